import type { z } from 'zod';
import type { ClusterEvent } from '../cluster/events.js';
import type { EventMetadata, TaskEvent } from '../task/events.js';

/**
 * The shape every read model has (design §6): a pure reducer from one event of the log to the rows it
 * changes. The runtime (src/projections) feeds it the log in position order, reads the rows it asks
 * for, writes the rows it returns, and commits them with the model's checkpoint in one transaction.
 * Nothing here does I/O: a reducer sees rows through a reader it is given, and returns writes as data.
 */

/** An event of the log as a read model sees it: decoded, with its place in the log. */
export type ProjectedEvent = {
  position: number;
  stream: string;
  revision: number;
  /** When the store recorded it, epoch ms (the store's clock: an import into another store resets it). */
  recordedAt: number;
  /** When the event says it happened (`firedAt` of a fire, `at` of any other event), epoch ms: kept by an import. */
  occurredAt: number;
  /** Who caused it, when the event said so. */
  metadata: EventMetadata | null;
} & ({ kind: 'task'; taskId: string; event: TaskEvent } | { kind: 'cluster'; event: ClusterEvent });

/** A row's key: the values of its table's key columns, in their order. */
export type RowKey = readonly (string | number)[];

/** A table of a read model: the row's schema (one column per field) and the columns that key it. */
export type TableDefinition<Row extends object> = {
  row: z.ZodType<Row>;
  key: readonly (keyof Row & string)[];
};

export type Tables = Record<string, object>;

export type TableDefinitions<R extends Tables> = { [T in keyof R]: TableDefinition<R[T]> };

/** A row to write: the whole row (its key columns say where), or the removal of the row at `key`. */
export type RowWrite<R extends Tables> = {
  [T in keyof R & string]: { table: T; row: R[T] } | { table: T; delete: RowKey };
}[keyof R & string];

/** How a reducer reads the rows it needs: the current row at a key, as of every event before this one. */
export type RowReader<R extends Tables> = {
  get<T extends keyof R & string>(table: T, key: RowKey): R[T] | undefined;
};

/** What the runtime knows beside the event. */
export type ProjectionContext = {
  /**
   * The latest `occurredAt` among the events the model has seen, this one included: time as the log
   * tells it, the same in a live model, a rebuild, and a rebuild after the log was imported elsewhere.
   */
  watermark: number;
};

export type ReadModel<R extends Tables> = {
  /** Stable name: the API, the CLI (`kairos replay --model`) and the read database use it. */
  name: string;
  /** Bump when what the rows mean changes: the model is then rebuilt from the log. */
  version: number;
  tables: TableDefinitions<R>;
  /** Which streams it reads; the others are never offered to it. */
  reads: 'tasks' | 'cluster' | 'tasks-and-cluster';
  /** Pure: the rows this event changes, from the rows it needs. */
  evolve(rows: RowReader<R>, event: ProjectedEvent, context: ProjectionContext): RowWrite<R>[];
  /**
   * Columns derived from the rest of a row, computed once per written row when the rows are stored
   * instead of at every event (say, the next fire time of a cron schedule). Must depend only on the
   * row's other columns; a reducer must not read what it derives.
   */
  settle?: Partial<{ [T in keyof R & string]: (row: R[T]) => R[T] }>;
  /**
   * For a table whose rows gather events of several streams (a total over every task): the row of
   * all the events, from the rows of two disjoint sets of streams — how a rebuild split by stream
   * over threads joins its halves. A table without it must key its rows by one stream (a row written
   * from both halves is then refused at the join).
   */
  merge?: Partial<{ [T in keyof R & string]: (a: R[T], b: R[T]) => R[T] }>;
  /**
   * Rows older than a table's `keep` (ms, by `column`, relative to the watermark) are deleted; a reducer
   * must not write such a row again (it would come back in a live model and not in a rebuild).
   */
  retention?: Partial<{ [T in keyof R & string]: { column: keyof R[T] & string; keepMs: number } }>;
};

/** How far ahead of the store's clock an event's own time may move the watermark. */
export const WATERMARK_SLACK_MS = 3_600_000;

/**
 * The watermark after `event`: its own time, but never more than an hour past when the store
 * recorded it. One event from a node whose clock ran days ahead (or a bad import) must not move
 * "now" forward and let retention drop every younger row; an import, whose recording times are
 * later than the events', changes nothing.
 */
export const advanceWatermark = (watermark: number, event: ProjectedEvent): number =>
  Math.max(watermark, Math.min(event.occurredAt, event.recordedAt + WATERMARK_SLACK_MS));

/**
 * Where retention cuts a table: rows below this go. It moves in steps of a 64th of the retention, so a
 * table is pruned a few dozen times over its retention rather than at every commit (each prune may scan
 * it), and the same watermark always gives the same cut — a live model and a rebuild keep the same rows.
 */
export const retentionCutoff = (watermark: number, keepMs: number): number => {
  const step = Math.max(1, Math.floor(keepMs / 64));
  return Math.floor((watermark - keepMs) / step) * step;
};

/** The key of a row, from its table's key columns. */
export const keyOf = <Row extends object>(table: TableDefinition<Row>, row: Row): RowKey =>
  table.key.map((column) => row[column] as string | number);

/** One string per key: equal keys, equal text. (Spelled out for short keys: it runs for every row write.) */
export const keyText = (key: RowKey): string => {
  switch (key.length) {
    case 1:
      return String(key[0]);
    case 2:
      return `${key[0]}\u0000${key[1]}`;
    case 3:
      return `${key[0]}\u0000${key[1]}\u0000${key[2]}`;
    default:
      return key.join('\u0000');
  }
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyReadModel = ReadModel<any>;
