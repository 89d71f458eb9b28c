import type { ReadModelDb } from './readModelDb.js';

export type TableComparison = {
  model: string;
  table: string;
  rows: number;
  rebuiltRows: number;
  /** Rows only the live model has / only the rebuild has (a changed row counts in both). */
  onlyLive: number;
  onlyRebuilt: number;
  /** A few keys of differing rows, to start looking. */
  examples: unknown[];
};

export type ComparisonReport = { ok: boolean; position: number; tables: TableComparison[] };

const EXAMPLES = 5;

/**
 * Compares the live models with a rebuild of them held at the same log position in a scratch
 * database: row for row, every column (`EXCEPT` both ways, so a row missing or different shows), and
 * the row counts (`EXCEPT` is a set operation: a row twice shows only there).
 */
export const compareModels = (
  live: ReadModelDb,
  scratch: { file: string; db: ReadModelDb },
  models: readonly string[],
  position: number,
): ComparisonReport => {
  const db = live.db;
  db.prepare('ATTACH DATABASE ? AS scratch').run(scratch.file);
  try {
    const tables: TableComparison[] = [];
    for (const model of models) {
      for (const table of Object.keys(live.model(model)?.model.tables ?? {})) {
        const a = `main."${live.tableName(model, table)}"`;
        const b = `scratch."${scratch.db.tableName(model, table)}"`;
        const key = live
          .schema(model, table)
          .key.map((k) => `"${k}"`)
          .join(', ');
        const count = (sql: string): number => db.prepare(sql).pluck().get() as number;
        const onlyLive = `SELECT * FROM ${a} EXCEPT SELECT * FROM ${b}`;
        const onlyRebuilt = `SELECT * FROM ${b} EXCEPT SELECT * FROM ${a}`;
        tables.push({
          model,
          table,
          rows: count(`SELECT count(*) FROM ${a}`),
          rebuiltRows: count(`SELECT count(*) FROM ${b}`),
          onlyLive: count(`SELECT count(*) FROM (${onlyLive})`),
          onlyRebuilt: count(`SELECT count(*) FROM (${onlyRebuilt})`),
          examples: db
            .prepare(`SELECT ${key} FROM (${onlyLive} UNION ALL ${onlyRebuilt}) LIMIT ${EXAMPLES}`)
            .raw()
            .all(),
        });
      }
    }
    return {
      ok: tables.every((t) => t.onlyLive === 0 && t.onlyRebuilt === 0 && t.rows === t.rebuiltRows),
      position,
      tables,
    };
  } finally {
    db.prepare('DETACH DATABASE scratch').run();
  }
};
