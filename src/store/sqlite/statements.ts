import type Database from 'better-sqlite3';
import type { StoredId, StreamHead } from '../appendRules.js';
import { prefixCondition } from './prefixFilter.js';

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

/** Every statement the adapter runs, prepared once per connection. */
export const prepareStatements = (db: Database.Database) => {
  const head = db.prepare<[], bigint>('SELECT coalesce(max(position), 0) FROM events').pluck();
  const dataVersion = db.prepare<[], bigint>('PRAGMA data_version').pluck();
  const streamHead = db.prepare<[string], { revision: bigint; position: bigint }>(
    'SELECT revision, position FROM streams WHERE stream = ?',
  );
  const storedId = db.prepare<[string], StoredId>('SELECT stream, revision, position FROM events WHERE id = ?');
  const insertEvent = db.prepare<[string, string, bigint, string, string, string | null, number]>(
    'INSERT INTO events (id, stream, revision, type, data, metadata, time) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const upsertStream = db.prepare<[string, bigint, bigint]>(
    'INSERT INTO streams (stream, revision, position) VALUES (?, ?, ?) ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, position = excluded.position',
  );
  const deleteBefore = db.prepare<[string, bigint]>('DELETE FROM events WHERE stream = ? AND revision < ?');
  const readForwards = db.prepare<[string, bigint, number], EventRow>(
    `SELECT ${COLUMNS} FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?`,
  );
  const readBackwards = db.prepare<[string, bigint, number], EventRow>(
    `SELECT ${COLUMNS} FROM events WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?`,
  );
  const readAll = db.prepare<[bigint, number], EventRow>(
    `SELECT ${COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`,
  );
  const readRange = db.prepare<[bigint, bigint, number], EventRow>(
    `SELECT ${COLUMNS} FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?`,
  );

  return {
    head: (): bigint => head.get() as bigint,
    dataVersion: (): bigint => dataVersion.get() as bigint,
    streamHead: (stream: string): StreamHead => streamHead.get(stream),
    storedId: (id: string): StoredId | undefined => storedId.get(id),
    insertEvent: (
      id: string,
      stream: string,
      revision: bigint,
      type: string,
      data: string,
      metadata: string | null,
      time: number,
    ): bigint => BigInt(insertEvent.run(id, stream, revision, type, data, metadata, time).lastInsertRowid),
    upsertStream: (stream: string, revision: bigint, position: bigint): void =>
      void upsertStream.run(stream, revision, position),
    /** Deletes the stream's events before `revision` (retention); its head in `streams` stays. */
    deleteBefore: (stream: string, revision: bigint): void => void deleteBefore.run(stream, revision),
    readForwards: (stream: string, from: bigint, limit: number): EventRow[] => readForwards.all(stream, from, limit),
    readBackwards: (stream: string, from: bigint, limit: number): EventRow[] => readBackwards.all(stream, from, limit),
    readAll: (after: bigint, limit: number): EventRow[] => readAll.all(after, limit),
    /** Events in (after, upTo], optionally only those of streams starting with one of `prefixes`. */
    rangeReader: (
      prefixes: readonly string[] | undefined,
    ): ((after: bigint, upTo: bigint, limit: number) => EventRow[]) => {
      if (prefixes === undefined) return (after, upTo, limit) => readRange.all(after, upTo, limit);
      const condition = prefixCondition(prefixes);
      const filtered = db.prepare<unknown[], EventRow>(
        `SELECT ${COLUMNS} FROM events WHERE position > ? AND position <= ? AND ${condition.sql} ORDER BY position LIMIT ?`,
      );
      return (after, upTo, limit) => filtered.all(after, upTo, ...condition.params, limit);
    },
  };
};

export type Statements = ReturnType<typeof prepareStatements>;
