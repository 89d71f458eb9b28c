import {
  advanceWatermark,
  retentionCutoff,
  keyOf,
  keyText,
  type ProjectedEvent,
  type ReadModel,
  type RowKey,
  type RowReader,
  type Tables,
} from './readModel.js';

/** A read model's rows held in memory: table → key text → row. */
export type ModelRows<R extends Tables> = { [T in keyof R]: Map<string, R[T]> };

/**
 * Folds events into a model's rows in memory, exactly as the runtime does over the read database
 * (watermark, retention): the reference the runtime is tested against, and what unit specs use.
 */
export const foldReadModel = <R extends Tables>(
  model: ReadModel<R>,
  events: Iterable<ProjectedEvent>,
  rows: ModelRows<R> = emptyRows(model),
  watermark = 0,
): { rows: ModelRows<R>; watermark: number } => {
  const applied = applyEvents(model, events, rows, watermark);
  settleRows(model, rows, applied);
  return { rows, watermark: applied };
};

/** The reducer's writes of `events` into `rows`, without settling them; returns the watermark reached. */
export const applyEvents = <R extends Tables>(
  model: ReadModel<R>,
  events: Iterable<ProjectedEvent>,
  rows: ModelRows<R>,
  watermark = 0,
): number => {
  const reader: RowReader<R> = {
    get: (table, key: RowKey) => rows[table].get(keyText(key)),
  };
  for (const event of events) {
    if (!readsEvent(model, event)) continue;
    watermark = advanceWatermark(watermark, event);
    for (const write of model.evolve(reader, event, { watermark })) {
      const table = rows[write.table];
      if ('delete' in write) table.delete(keyText(write.delete));
      else table.set(keyText(keyOf(model.tables[write.table], write.row)), write.row);
    }
  }
  return watermark;
};

/** What the runtime does at each commit: derived columns settled, rows retention drops (at `watermark`) dropped. */
export const settleRows = <R extends Tables>(model: ReadModel<R>, rows: ModelRows<R>, watermark: number): void => {
  for (const [name, settle] of Object.entries(model.settle ?? {}) as [keyof R & string, (row: unknown) => unknown][]) {
    for (const [key, row] of rows[name]) rows[name].set(key, settle(row) as R[typeof name]);
  }
  // Reducers never write a row retention would drop; this drops those the watermark has since passed.
  for (const [name, rule] of Object.entries(model.retention ?? {}) as [keyof R & string, RetentionRule][]) {
    const oldest = retentionCutoff(watermark, rule.keepMs);
    for (const [key, row] of rows[name])
      if ((row as Record<string, number>)[rule.column]! < oldest) rows[name].delete(key);
  }
};

type RetentionRule = { column: string; keepMs: number };

/**
 * The rows of two disjoint sets of streams folded apart (each from watermark 0; settled and pruned at
 * its own watermark or not, alike: settling is idempotent and a half's cut is at most the joined one),
 * joined into the rows of all of them: merged by the model's `merge` where both hold a row of a table
 * that has one, refused where both hold a row of a table that has none; then settled and pruned at
 * the later watermark. Equal to one fold of every event: each half's watermark is at most the
 * whole's, so a half skips no write the whole makes, and what the whole skipped (or retention
 * dropped) is older than the cut made here.
 */
export const joinFolds = <R extends Tables>(
  model: ReadModel<R>,
  a: { rows: ModelRows<R>; watermark: number },
  b: { rows: ModelRows<R>; watermark: number },
): { rows: ModelRows<R>; watermark: number } => {
  const rows = emptyRows(model);
  for (const table of Object.keys(model.tables) as (keyof R & string)[]) {
    const merge = model.merge?.[table];
    const joined = rows[table];
    for (const [key, row] of a.rows[table]) joined.set(key, row);
    for (const [key, row] of b.rows[table]) {
      const other = joined.get(key);
      if (other === undefined) joined.set(key, row);
      else if (merge) joined.set(key, merge(other, row));
      else throw new Error(rowInBothHalves(model.name, table, key));
    }
  }
  const watermark = Math.max(a.watermark, b.watermark);
  settleRows(model, rows, watermark);
  return { rows, watermark };
};

/** Why a join fails: a table without `merge` has a row from both halves (its rows are not one stream's). */
export const rowInBothHalves = (model: string, table: string, key: string): string =>
  `read model '${model}': table '${table}' has a row from streams of both halves (key ${JSON.stringify(key.split('\u0000'))}) and no merge`;

export const emptyRows = <R extends Tables>(model: ReadModel<R>): ModelRows<R> =>
  Object.fromEntries(Object.keys(model.tables).map((t) => [t, new Map()])) as ModelRows<R>;

/** Whether a model reads this event's stream. */
export const readsEvent = (model: Pick<ReadModel<Tables>, 'reads'>, event: ProjectedEvent): boolean =>
  model.reads === 'tasks-and-cluster' || (model.reads === 'tasks') === (event.kind === 'task');
