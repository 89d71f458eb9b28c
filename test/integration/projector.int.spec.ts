import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ReadModel } from '../../domain/projections/readModel.js';
import { taskStreamOf } from '../../domain/task/events.js';
import { silentLogger } from '../../src/node/logger.js';
import { ModelWriter } from '../../src/projections/modelWriter.js';
import { Projector } from '../../src/projections/projector.js';
import { ReadModelDb } from '../../src/projections/readModelDb.js';
import { hasKeyIndex } from '../../src/projections/tableSchema.js';
import { SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';

/**
 * The projector's exactly-once promise where it is hardest to keep: a commit that fails after some
 * models have written their rows (and the checkpoint) must leave every model where it was, so the
 * events are applied again — none counted twice, none skipped.
 */

const Count = z.object({ id: z.string(), events: z.number() });
type Count = z.output<typeof Count>;

/** Counts the task events it sees; `failOnce` makes its first commit throw inside the transaction. */
const counter = (name: string, failOnce: { armed: boolean }): ReadModel<{ counts: Count }> => ({
  name,
  version: 1,
  reads: 'tasks',
  tables: { counts: { row: Count, key: ['id'] } },
  evolve: (rows) => [{ table: 'counts', row: { id: 'all', events: (rows.get('counts', ['all'])?.events ?? 0) + 1 } }],
  settle: {
    counts: (row) => {
      if (failOnce.armed) {
        failOnce.armed = false;
        throw new Error('disk full (simulated)');
      }
      return row;
    },
  },
});

/** One row per task, counting its events; `failOnce` makes its first commit throw inside the transaction. */
const perTask = (name: string, failOnce: { armed: boolean }): ReadModel<{ counts: Count }> => ({
  ...counter(name, failOnce),
  evolve: (rows, e) => {
    const id = e.kind === 'task' ? e.taskId : 'cluster';
    return [{ table: 'counts', row: { id, events: (rows.get('counts', [id])?.events ?? 0) + 1 } }];
  },
});

let dir: string;
let store: SqliteEventStore;

const append = async (n: number) => {
  for (let i = 0; i < n; i++) {
    await store.appendToStream(taskStreamOf(`t${i}`), [
      {
        id: randomUUID(),
        type: 'TaskPaused',
        data: { v: 1, taskId: `t${i}`, at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() },
        metadata: { actor: 'user:test' },
      },
    ]);
  }
};

/**
 * Two models of `kind` follow 5 events, the second's first commit failing after the first wrote its
 * rows, then 3 more; returns their database (`indexes: false`: tables as a rebuild creates them).
 */
const projectThroughAFailedCommit = async (
  kind: (name: string, failOnce: { armed: boolean }) => ReadModel<{ counts: Count }>,
  options: { indexes?: boolean } = {},
): Promise<ReadModelDb> => {
  const fault = { armed: true };
  const models = [{ model: kind('first', { armed: false }) }, { model: kind('second', fault) }];
  const db = ReadModelDb.open(join(dir, 'read.db'), models, options);
  const writers = models.map(
    ({ model }) => new ModelWriter(db, model, db.state(model.name).generation, db.state(model.name)),
  );
  const projector = new Projector({ store, db, writers, logger: silentLogger });
  await append(5);
  projector.start();
  // The first commit fails; the projector reads the events again after a second and commits them.
  await expect.poll(() => projector.position, { timeout: 10_000 }).toBe(5);
  expect(fault.armed).toBe(false);
  await append(3);
  await expect.poll(() => projector.position, { timeout: 10_000 }).toBe(8);
  projector.close();
  return db;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-projector-'));
  store = SqliteEventStore.open(join(dir, 'kairos.db'), { writer: 'inline' });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('projector', () => {
  it('a commit that fails after another model wrote its rows applies the events again: none skipped, none twice', async () => {
    const db = await projectThroughAFailedCommit(counter);
    const count = (model: string) =>
      db.db
        .prepare(`SELECT events FROM "${db.tableName(model, 'counts')}" WHERE id = 'all'`)
        .pluck()
        .get();
    expect(count('first')).toBe(8);
    expect(count('second')).toBe(8);
    expect(db.state('first')).toMatchObject({ position: 8, events: 8 });
    expect(db.state('second')).toMatchObject({ position: 8, events: 8 });
    db.close();
  });
});

describe('projector commit size', () => {
  const paused = (i: number) => ({
    stream: taskStreamOf(`t${i}`),
    events: [
      {
        id: randomUUID(),
        type: 'TaskPaused',
        data: { v: 1, taskId: `t${i}`, at: new Date(Date.UTC(2026, 0, 1) + i).toISOString() },
        metadata: { actor: 'user:test' },
      },
    ],
  });
  const follow = async (busy: boolean): Promise<number[]> => {
    await store.appendBatch(Array.from({ length: 45_000 }, (_, i) => paused(i)));
    const models = [{ model: counter('counts', { armed: false }) }];
    const db = ReadModelDb.open(join(dir, 'read.db'), models);
    const writers = models.map(
      ({ model }) => new ModelWriter(db, model, db.state(model.name).generation, db.state(model.name)),
    );
    const projector = new Projector({ store, db, writers, logger: silentLogger });
    const sizes: number[] = [];
    projector.commits$.subscribe((c) => sizes.push(c.to - c.from));
    projector.nodeBusy(busy);
    projector.start();
    await expect.poll(() => projector.position, { timeout: 20_000 }).toBe(45_000);
    projector.close();
    expect(
      db.db
        .prepare(`SELECT events FROM "${db.tableName('counts', 'counts')}" WHERE id = ?`)
        .pluck()
        .get('all'),
    ).toBe(45_000);
    db.close();
    return sizes;
  };

  it('commits a catch-up every 5,000 events while the node is calm', async () => {
    const sizes = await follow(false);
    expect(Math.max(...sizes)).toBe(5_000);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(45_000);
  });

  it('commits every 20,000 while the node is busy: fewer, larger transactions, the same rows', async () => {
    const sizes = await follow(true);
    expect(Math.max(...sizes)).toBe(20_000);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(45_000);
  });
});

describe('projector over tables a rebuild has not indexed yet', () => {
  it('rows found by rowid: a failed commit is undone in the writer too, so the events applied again land once', async () => {
    // As a rebuild creates them: no index on the key yet, so the writers keep rowids.
    const db = await projectThroughAFailedCommit(perTask, { indexes: false });
    for (const model of ['first', 'second']) {
      const table = db.tableName(model, 'counts');
      expect(hasKeyIndex(db.db, table, ['id'])).toBe(false);
      expect(db.db.prepare(`SELECT id, events FROM "${table}" ORDER BY id`).all()).toEqual([
        { id: 't0', events: 2 },
        { id: 't1', events: 2 },
        { id: 't2', events: 2 },
        { id: 't3', events: 1 },
        { id: 't4', events: 1 },
      ]);
    }
    // Indexed afterwards, as a rebuild does: the key is unique, so no row was written twice.
    db.createIndexes('first', db.state('first').generation);
    expect(hasKeyIndex(db.db, db.tableName('first', 'counts'), ['id'])).toBe(true);
    db.close();
  });
});

describe('read database', () => {
  it("finds a key's index: its own, or an older table's PRIMARY KEY (an index, or for one INTEGER column the rowid)", () => {
    const db = ReadModelDb.open(join(dir, 'keys.db'), []);
    db.db.exec('CREATE TABLE own (a TEXT, b INTEGER); CREATE UNIQUE INDEX own__key ON own (a, b)');
    db.db.exec('CREATE TABLE old (a TEXT, b INTEGER, PRIMARY KEY (a, b))');
    db.db.exec('CREATE TABLE oldRowid ("position" INTEGER, x TEXT, PRIMARY KEY ("position"))');
    db.db.exec('CREATE TABLE none (a TEXT, b INTEGER); CREATE INDEX none__a_b ON none (a, b)');
    expect(hasKeyIndex(db.db, 'own', ['a', 'b'])).toBe(true);
    expect(hasKeyIndex(db.db, 'old', ['a', 'b'])).toBe(true);
    expect(hasKeyIndex(db.db, 'old', ['b', 'a'])).toBe(false);
    expect(hasKeyIndex(db.db, 'oldRowid', ['position'])).toBe(true);
    expect(hasKeyIndex(db.db, 'none', ['a', 'b'])).toBe(false);
    db.close();
  });

  it('a new version starts its generation empty, though a rebuild that never switched left rows under that number', () => {
    const file = join(dir, 'read.db');
    const v1 = ReadModelDb.open(file, [{ model: counter('tally', { armed: false }) }]);
    expect(v1.state('tally').generation).toBe(1);
    // A replay built generation 2 and the process stopped before switching to it.
    v1.createGeneration('tally', 2);
    v1.db.prepare(`INSERT INTO "${v1.tableName('tally', 'counts', 2)}" (id, events) VALUES ('left-over', 99)`).run();
    v1.close();

    const v2 = ReadModelDb.open(file, [{ model: { ...counter('tally', { armed: false }), version: 2 } }]);
    expect(v2.state('tally')).toMatchObject({ version: 2, generation: 2, position: 0, events: 0 });
    expect(
      v2.db
        .prepare(`SELECT count(*) FROM "${v2.tableName('tally', 'counts')}"`)
        .pluck()
        .get(),
    ).toBe(0);
    v2.close();
  });
});
