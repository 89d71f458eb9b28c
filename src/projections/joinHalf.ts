import type { RowKey } from '../../domain/projections/readModel.js';
import type { ModelWriter } from './modelWriter.js';
import type { ModelState, ReadModelDb } from './readModelDb.js';

/**
 * Joins the half of a rebuild split by stream that the second thread built (the live generation of
 * the read database `file`) into the first thread's writers (their next generation, rows buffered or
 * written, not yet indexed), as `joinFolds` does in memory: rows are copied in by SQLite, except, in
 * a table with a `merge`, those at a key this half holds too, which its writer merges. In a table
 * without one each row is one stream's (a key in both halves fails at `indexJoined`).
 * The writers then count the other half's events and watermark; their next commit writes the merged
 * rows and prunes at the joined watermark.
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
        const from = `half."${db.tableName(name, table, half.generation)}"`;
        const columns = schema.columns.map((c) => `"${c.name}"`).join(', ');
        const into = `main."${db.tableName(name, table, writer.generation)}" (${columns})`;
        if (!merge?.[table]) {
          db.db.exec(`INSERT INTO ${into} SELECT ${columns} FROM ${from}`);
          continue;
        }
        // Only the keys both halves hold go through the writer (the statistics' `*` rows): the rest is copied.
        const keys = db.db
          .prepare(`SELECT rowid, ${schema.key.map((k) => `"${k}"`).join(', ')} FROM ${from}`)
          .raw(true)
          .all() as [number, ...RowKey][];
        const both = JSON.stringify(keys.filter(([, ...key]) => writer.holds(table, key)).map(([rowid]) => rowid));
        const inBoth = 'rowid IN (SELECT value FROM json_each(?))';
        db.db.prepare(`INSERT INTO ${into} SELECT ${columns} FROM ${from} WHERE NOT ${inBoth}`).run(both);
        for (const record of db.db.prepare(`SELECT * FROM ${from} WHERE ${inBoth}`).all(both))
          writer.join(table, schema.fromRecord(record as Record<string, unknown>));
      }
      writer.absorb(half);
    }
  } finally {
    db.db.exec('DETACH DATABASE half');
  }
};

/**
 * Builds the indexes of the joined generations; a key both halves wrote (a table whose rows gather
 * several streams and that has no `merge`) fails here, named, rather than leave a row twice.
 */
export const indexJoined = (db: ReadModelDb, writers: readonly ModelWriter[]): void => {
  for (const w of writers) {
    try {
      db.createIndexes(w.model.name, w.generation);
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_CONSTRAINT_UNIQUE') throw err;
      throw new Error(
        `read model '${w.model.name}': a table has rows of one key from streams of both halves of the rebuild and no merge (${(err as Error).message})`,
      );
    }
    w.indexed(false);
  }
};
