import type { ModelWriter } from './modelWriter.js';
import type { ModelState, ReadModelDb } from './readModelDb.js';
import { createKeyIndexSql } from './tableSchema.js';

/**
 * Joins the half of a rebuild split by stream that the second thread built (the live generation of
 * the read database `file`) into the first thread's writers (their next generation, committed, not yet
 * indexed), as `joinFolds` does in memory: rows are copied in by SQLite, except, in a table with a
 * `merge`, those at a key this half holds too, which its writer merges. In a table without one each
 * row is one stream's: a key in both halves fails, named, here or at `indexJoined`. The writers then
 * count the other half's events and watermark; their next commit writes the merged rows and prunes at
 * the joined watermark.
 */
export const joinHalf = (db: ReadModelDb, file: string, writers: readonly ModelWriter[]): void => {
  db.db.prepare('ATTACH DATABASE ? AS half').run(file);
  try {
    const halves = new Map(
      (db.db.prepare('SELECT * FROM half.read_models').all() as ModelState[]).map((s) => [s.name, s]),
    );
    for (const writer of writers) {
      const { name, version, merge } = writer.model;
      const half = halves.get(name);
      if (!half) throw new Error(`the rebuilt read database ${file} has no model '${name}'`);
      if (half.version !== version)
        throw new Error(`the rebuilt read database ${file} has version ${half.version} of model '${name}'`);
      for (const table of Object.keys(writer.model.tables)) {
        const schema = db.schema(name, table);
        const target = db.tableName(name, table, writer.generation);
        const from = `half."${db.tableName(name, table, half.generation)}" h`;
        const columns = schema.columns.map((c) => `"${c.name}"`).join(', ');
        const copy = `INSERT INTO main."${target}" (${columns}) SELECT ${schema.columns.map((c) => `h."${c.name}"`).join(', ')} FROM ${from}`;
        if (!merge?.[table]) {
          named(name, () => db.db.exec(copy));
          continue;
        }
        // The keys both halves hold (the statistics' `*` rows), found by the key's index, go through the
        // writer to be merged; the rest is copied.
        db.db.exec(createKeyIndexSql(target, schema.key));
        const inThisHalf = `EXISTS (SELECT 1 FROM main."${target}" m WHERE ${schema.key.map((k) => `m."${k}" = h."${k}"`).join(' AND ')})`;
        const both = db.db.prepare(`SELECT h.* FROM ${from} WHERE ${inThisHalf}`).all();
        db.db.exec(`${copy} WHERE NOT ${inThisHalf}`);
        for (const record of both) writer.join(table, schema.fromRecord(record as Record<string, unknown>));
      }
      writer.absorb(half);
    }
  } finally {
    db.db.exec('DETACH DATABASE half');
  }
};

/** Runs `write`; a key both halves wrote (a unique index refuses it) becomes an error naming the model. */
const named = (model: string, write: () => void): void => {
  try {
    write();
  } catch (err) {
    if ((err as { code?: string }).code !== 'SQLITE_CONSTRAINT_UNIQUE') throw err;
    throw new Error(
      `read model '${model}': a table has rows of one key from streams of both halves of the rebuild and no merge (${(err as Error).message})`,
    );
  }
};

/**
 * Builds the indexes of the joined generations; a key both halves wrote (a table whose rows gather
 * several streams and that has no `merge`) fails here, named, rather than leave a row twice.
 */
export const indexJoined = (db: ReadModelDb, writers: readonly ModelWriter[]): void => {
  for (const w of writers) {
    named(w.model.name, () => db.createIndexes(w.model.name, w.generation));
    w.indexed(false);
  }
};
