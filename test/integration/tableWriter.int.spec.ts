import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TableWriter } from '../../src/projections/tableWriter.js';
import { createTableSql, hasKeyIndex, tableSchemaOf, type TableSchema } from '../../src/projections/tableSchema.js';

/**
 * A table as a rebuild writes it: created empty without its key's index, so the writer inserts new
 * rows in batches and finds changed ones by the rowids it remembers. A wrong rowid would update or
 * delete another row; a rowid kept after a rolled-back insert would point at nothing, or at the row
 * the retry inserts there.
 */

const Attempt = z.object({ taskId: z.string(), attempt: z.number(), status: z.string() });
type Attempt = z.output<typeof Attempt>;

let dir: string;
let db: Database.Database;
let schema: TableSchema;

const rowsOf = (): Attempt[] =>
  db.prepare('SELECT taskId, attempt, status FROM attempts ORDER BY taskId, attempt').all() as Attempt[];
const attempt = (i: number, status: string): Attempt => ({
  taskId: `t${String(i).padStart(3, '0')}`,
  attempt: 1,
  status,
});
/** A writer over the empty, unindexed table, as a rebuild's new generation has it. */
const rebuildWriter = (): TableWriter => new TableWriter(db, 'attempts', schema, { empty: true });
const commit = (writer: TableWriter): void => {
  db.transaction(() => writer.flush(false))();
  writer.committed();
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-table-writer-'));
  db = new Database(join(dir, 'read.db'));
  schema = tableSchemaOf({ row: Attempt, key: ['taskId', 'attempt'] } as never);
  db.exec(createTableSql('attempts', schema));
});

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('table writer, key not indexed (a rebuild)', () => {
  // 100 rows: three full batches of 32 and four inserted one by one.
  const N = 100;

  it('inserts new rows in batches and finds each again by its rowid', () => {
    const writer = rebuildWriter();
    for (let i = 0; i < N; i++) writer.set(attempt(i, 'started'));
    commit(writer);
    expect(hasKeyIndex(db, 'attempts', ['taskId', 'attempt'])).toBe(false);
    expect(rowsOf()).toEqual(Array.from({ length: N }, (_, i) => attempt(i, 'started')));

    // Every row changed, and every third deleted, found by the rowid remembered for its key.
    for (let i = 0; i < N; i++) {
      if (i % 3 === 0) writer.delete([attempt(i, '').taskId, 1]);
      else writer.set(attempt(i, `done ${i}`));
    }
    for (let i = N; i < N + 40; i++) writer.set(attempt(i, 'started'));
    commit(writer);
    const expected = [
      ...Array.from({ length: N }, (_, i) => i)
        .filter((i) => i % 3 !== 0)
        .map((i) => attempt(i, `done ${i}`)),
      ...Array.from({ length: 40 }, (_, i) => attempt(N + i, 'started')),
    ];
    expect(rowsOf()).toEqual(expected);
    expect(writer.get([attempt(1, '').taskId, 1])).toEqual(attempt(1, 'done 1'));
    expect(writer.get([attempt(0, '').taskId, 1])).toBeUndefined();
  });

  it('a commit that fails after inserting forgets those rowids: the rows written again land once', () => {
    const writer = rebuildWriter();
    for (let i = 0; i < 10; i++) writer.set(attempt(i, 'started'));
    commit(writer);
    for (let i = 0; i < 10; i++) writer.delete([attempt(i, '').taskId, 1]);
    for (let i = 10; i < N; i++) writer.set(attempt(i, 'started'));
    expect(() =>
      db.transaction(() => {
        writer.flush(false);
        throw new Error('disk full (simulated)');
      })(),
    ).toThrow('disk full');
    writer.discard();
    expect(rowsOf()).toHaveLength(10);

    // The projector applies the same events again, then goes on.
    for (let i = 0; i < 10; i++) writer.delete([attempt(i, '').taskId, 1]);
    for (let i = 10; i < N; i++) writer.set(attempt(i, 'started'));
    commit(writer);
    for (let i = 10; i < N; i++) writer.set(attempt(i, 'succeeded'));
    commit(writer);
    expect(rowsOf()).toEqual(Array.from({ length: N - 10 }, (_, i) => attempt(10 + i, 'succeeded')));
    // A row twice would fail the key's index.
    expect(() => db.exec('CREATE UNIQUE INDEX attempts__key ON attempts (taskId, attempt)')).not.toThrow();
  });

  it('a commit that fails midway through the rows inserted one by one forgets the rowids of those before', () => {
    const writer = rebuildWriter();
    // Any failing insert will do (disk full, an I/O error); a trigger stands in for it.
    db.exec(`CREATE TRIGGER boom BEFORE INSERT ON attempts WHEN NEW.status = 'boom'
             BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END`);
    writer.set(attempt(1, 'started'));
    writer.set(attempt(2, 'boom'));
    expect(() => db.transaction(() => writer.flush(false))()).toThrow('disk full');
    writer.discard();
    expect(rowsOf()).toEqual([]);
    // Another row takes the rowid the rolled-back one had: the writer must not find it at task 1's key.
    writer.set(attempt(3, 'started'));
    commit(writer);
    expect(writer.get([attempt(1, '').taskId, 1])).toBeUndefined();
    writer.set(attempt(1, 'started'));
    commit(writer);
    expect(rowsOf()).toEqual([attempt(1, 'started'), attempt(3, 'started')]);
  });
});
