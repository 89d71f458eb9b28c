import type Database from 'better-sqlite3';
import type { StoredId, StreamHead } from '../appendRules.js';
import { partitionSql, type StreamPartition } from '../streamPartition.js';
import { prefixCondition } from './prefixFilter.js';
import { ANCHOR_EVERY } from './schema.js';

/** A row of `events` as read with safe integers. */
export type EventRow = {
  position: bigint;
  id: string;
  stream: string;
  revision: bigint;
  type: string;
  data: string;
  metadata: string | null;
  time: bigint;
};

const COLUMNS = 'position, id, stream, revision, type, data, metadata, time';
// LIMIT -1 is SQLite's "no limit".
export const NO_LIMIT = -1;
/** The highest revision (and position) a 64-bit integer holds. */
export const MAX_INT64 = 2n ** 63n - 1n;

type RawEventRow = [bigint, string, string, bigint, string, string, string | null, bigint];

/**
 * Events are read as arrays (`raw`) and shaped here: better-sqlite3 builds a row object by naming
 * each property from C++, about twice as slow as one object literal of a fixed shape in JavaScript
 * (1,004,000 events: 2.26 s as objects, 1.23 s as arrays) — reading the log is most of a replay.
 */
const eventRowOf = (r: RawEventRow): EventRow => ({
  position: r[0],
  id: r[1],
  stream: r[2],
  revision: r[3],
  type: r[4],
  data: r[5],
  metadata: r[6],
  time: r[7],
});
const eventRows = (statement: Database.Statement, ...params: unknown[]): EventRow[] =>
  (statement.all(...params) as RawEventRow[]).map(eventRowOf);

/**
 * A stream's events from the one at `@start` down through `previous`, stopping after revision `@low`
 * (or at the first event, whose `previous` is 0, or where retention deleted the rest). Each step is a
 * rowid lookup, as an index range scan's is.
 */
const CHAIN = `WITH RECURSIVE chain (position, id, stream, revision, type, data, metadata, time, previous) AS (
  SELECT ${COLUMNS}, previous FROM events WHERE position = @start
  UNION ALL
  SELECT e.position, e.id, e.stream, e.revision, e.type, e.data, e.metadata, e.time, e.previous
  FROM chain c JOIN events e ON e.position = c.previous WHERE c.revision > @low
)`;

/** Revisions `low..high` of a stream walk down from `start`; nothing to read when `low > high`. */
type Walk = { start: bigint; low: bigint; high: bigint };

/** Every statement the adapter runs, prepared once per connection. */
export const prepareStatements = (db: Database.Database) => {
  const head = db.prepare<[], bigint>('SELECT coalesce(max(position), 0) FROM events').pluck();
  const dataVersion = db.prepare<[], bigint>('PRAGMA data_version').pluck();
  const streamHead = db.prepare<[string], { revision: bigint; position: bigint }>(
    'SELECT revision, position FROM streams WHERE stream = ?',
  );
  const storedId = db.prepare<[string], StoredId>('SELECT stream, revision, position FROM events WHERE id = ?');
  const insertEvent = db.prepare<[string, string, bigint, bigint, string, string, string | null, number]>(
    'INSERT INTO events (id, stream, revision, previous, type, data, metadata, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const upsertStream = db.prepare<[string, bigint, bigint]>(
    'INSERT INTO streams (stream, revision, position) VALUES (?, ?, ?) ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, position = excluded.position',
  );
  const anchor = db
    .prepare<[string, bigint], bigint>(
      `SELECT position FROM events WHERE stream = ? AND revision >= ? AND revision % ${ANCHOR_EVERY} = 0 ORDER BY revision LIMIT 1`,
    )
    .pluck();
  const walkUp = db
    .prepare<Walk, RawEventRow>(
      `${CHAIN} SELECT ${COLUMNS} FROM chain WHERE revision BETWEEN @low AND @high ORDER BY revision`,
    )
    .raw(true);
  const walkDown = db
    .prepare<Walk, RawEventRow>(
      `${CHAIN} SELECT ${COLUMNS} FROM chain WHERE revision BETWEEN @low AND @high ORDER BY revision DESC`,
    )
    .raw(true);
  const bottom = db.prepare<Omit<Walk, 'high'>, bigint>(`${CHAIN} SELECT min(revision) FROM chain`).pluck();
  const truncations = db.prepare<[], bigint>("SELECT value FROM log_meta WHERE key = 'truncations'").pluck();
  const countTruncation = db.prepare(
    "INSERT INTO log_meta (key, value) VALUES ('truncations', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1",
  );
  const deleteWalk = db.prepare<Walk>(
    `DELETE FROM events WHERE position IN (${CHAIN} SELECT position FROM chain WHERE revision BETWEEN @low AND @high)`,
  );

  /** The stream's head, when it has an event (position 0: a stream started empty by startStreamAt). */
  const eventHead = (stream: string): StreamHead => {
    const head = streamHead.get(stream);
    return head === undefined || head.position === 0n ? undefined : head;
  };
  /**
   * The walk to revisions `lowOf(top)..top` of the stream whose `head` is given, `top` being `high` or
   * the head if lower: it starts at the head, or at the first anchor at or above `top` (at most 63
   * revisions above). Undefined when there is nothing to read.
   */
  const walkFrom = (
    stream: string,
    head: StreamHead,
    high: bigint,
    lowOf: (top: bigint) => bigint,
  ): Walk | undefined => {
    if (head === undefined) return undefined;
    const top = high < head.revision ? high : head.revision;
    const low = lowOf(top);
    if (low > top) return undefined;
    const start = top < head.revision ? (anchor.get(stream, top) ?? head.position) : head.position;
    return { start, low, high: top };
  };
  const walk = (statement: Database.Statement<Walk>, at: Walk | undefined): EventRow[] =>
    at === undefined ? [] : eventRows(statement, at);
  /**
   * The stream's first revision retention kept: the bottom of the chain below its lowest anchor (the
   * anchor under that one is deleted, so at most 63 steps), or below the head if no anchor is left.
   */
  const firstKept = (stream: string, head: NonNullable<StreamHead>): bigint | undefined => {
    const start = anchor.get(stream, 0n) ?? head.position;
    return bottom.get({ start, low: -1n }) ?? undefined;
  };
  /** Up to `limit` events (NO_LIMIT: all) from revision `from` up, counting only events that exist. */
  const readForwards = (stream: string, from: bigint, limit: number): EventRow[] => {
    const head = eventHead(stream);
    const upTo = (low: bigint) => (limit === NO_LIMIT ? MAX_INT64 : low + BigInt(limit) - 1n);
    const rows = walk(
      walkUp,
      walkFrom(stream, head, upTo(from), () => from),
    );
    if (head === undefined || limit === NO_LIMIT || rows.length === limit || rows[0]?.revision === from) return rows;
    // Short, and not from `from`: retention deleted the stream's start, and the read begins where it ends.
    const kept = firstKept(stream, head);
    return kept === undefined || kept <= from
      ? rows
      : walk(
          walkUp,
          walkFrom(stream, head, upTo(kept), () => kept),
        );
  };

  const readAll = db
    .prepare<[bigint, number], RawEventRow>(
      `SELECT ${COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`,
    )
    .raw(true);
  /** Per partition count, the read of one part (prepared when first asked: only rebuilds ask). */
  const readPart = new Map<number, Database.Statement<[bigint, number, number], RawEventRow>>();
  const partStatement = (count: number) => {
    let statement = readPart.get(count);
    if (!statement) {
      statement = db
        .prepare<[bigint, number, number], RawEventRow>(
          `SELECT ${COLUMNS} FROM events WHERE position > ? AND ${partitionSql(count)} = ? ORDER BY position LIMIT ?`,
        )
        .raw(true);
      readPart.set(count, statement);
    }
    return statement;
  };
  const readRange = db
    .prepare<[bigint, bigint, number], RawEventRow>(
      `SELECT ${COLUMNS} FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?`,
    )
    .raw(true);

  return {
    head: (): bigint => head.get() as bigint,
    dataVersion: (): bigint => dataVersion.get() as bigint,
    streamHead: (stream: string): StreamHead => streamHead.get(stream),
    storedId: (id: string): StoredId | undefined => storedId.get(id),
    insertEvent: (
      id: string,
      stream: string,
      revision: bigint,
      previous: bigint,
      type: string,
      data: string,
      metadata: string | null,
      time: number,
    ): bigint => BigInt(insertEvent.run(id, stream, revision, previous, type, data, metadata, time).lastInsertRowid),
    upsertStream: (stream: string, revision: bigint, position: bigint): void =>
      void upsertStream.run(stream, revision, position),
    /** Deletes the stream's events before `revision` (retention); its head in `streams` stays. */
    deleteBefore: (stream: string, revision: bigint): void => {
      const at = walkFrom(stream, eventHead(stream), revision - 1n, () => 0n);
      if (at === undefined) return;
      deleteWalk.run(at);
      countTruncation.run();
    },
    /** How many truncations the file has seen, by any process: rows read before a change may be gone. */
    truncations: (): bigint => truncations.get() ?? 0n,
    // Each a transaction of its own: the several statements of one read see one snapshot of the file.
    readForwards: db.transaction(readForwards),
    /** Up to `limit` events (NO_LIMIT: all) from revision `from` (or the head, if lower) down. */
    readBackwards: db.transaction((stream: string, from: bigint, limit: number): EventRow[] =>
      walk(
        walkDown,
        walkFrom(stream, eventHead(stream), from, (top) =>
          limit === NO_LIMIT || top < BigInt(limit) ? 0n : top - BigInt(limit) + 1n,
        ),
      ),
    ),
    /** Up to `limit` events after `after`; with `partition`, only those of its streams (filtered by SQLite). */
    readAll: (after: bigint, limit: number, partition?: StreamPartition): EventRow[] =>
      partition
        ? eventRows(partStatement(partition.count), after, partition.index, limit)
        : eventRows(readAll, after, limit),
    /** Events in (after, upTo], optionally only those of streams starting with one of `prefixes`. */
    rangeReader: (
      prefixes: readonly string[] | undefined,
    ): ((after: bigint, upTo: bigint, limit: number) => EventRow[]) => {
      if (prefixes === undefined) return (after, upTo, limit) => eventRows(readRange, after, upTo, limit);
      const condition = prefixCondition(prefixes);
      const filtered = db
        .prepare<unknown[], RawEventRow>(
          `SELECT ${COLUMNS} FROM events WHERE position > ? AND position <= ? AND ${condition.sql} ORDER BY position LIMIT ?`,
        )
        .raw(true);
      return (after, upTo, limit) => eventRows(filtered, after, upTo, ...condition.params, limit);
    },
  };
};

export type Statements = ReturnType<typeof prepareStatements>;
