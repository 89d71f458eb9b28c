import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ProjectedEvent, ReadModel } from '../../domain/projections/readModel.js';
import { indexJoined, joinHalf } from '../../src/projections/joinHalf.js';
import { ModelWriter } from '../../src/projections/modelWriter.js';
import { ReadModelDb } from '../../src/projections/readModelDb.js';

/**
 * The join of a rebuild split by stream, on real SQLite files: the second half's rows copied or
 * merged into the first half's next generation, pruned at the joined watermark, a key in both halves
 * of a table without a merge refused by name.
 */

type Rows = { items: { stream: string; at: number }; totals: { scope: string; n: number } };

/** One row per stream (its last event's time), pruned after 1 s; and a count of every event, merged by sum. */
const model = (merge: boolean): ReadModel<Rows> => ({
  name: 'log',
  version: 1,
  reads: 'tasks',
  tables: {
    items: { row: z.object({ stream: z.string(), at: z.number() }), key: ['stream'] },
    totals: { row: z.object({ scope: z.string(), n: z.number() }), key: ['scope'] },
  },
  evolve: (rows, e) => [
    { table: 'items', row: { stream: e.stream, at: e.occurredAt } },
    { table: 'totals', row: { scope: '*', n: (rows.get('totals', ['*'])?.n ?? 0) + 1 } },
  ],
  retention: { items: { column: 'at', keepMs: 1_000 } },
  ...(merge ? { merge: { totals: (a, b) => ({ scope: '*', n: a.n + b.n }) } } : {}),
});

const event = (position: number, stream: string, at: number): ProjectedEvent => ({
  kind: 'task',
  position,
  stream,
  revision: 0,
  recordedAt: at,
  occurredAt: at,
  metadata: null,
  taskId: stream,
  event: { type: 'TaskResumed', data: { v: 1, taskId: stream, at: new Date(at).toISOString() } },
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-join-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The first half: streams a0..a9 at 0..3,000 ms (its own cut ~2,000 ms), into the next generation;
 * the second: streams b0..b4 at 0..400 ms, all older than that cut, into the live generation of
 * another file. Both committed; returns the first half's database and writer.
 */
const halves = (merge: boolean, secondStreams = ['b0', 'b1', 'b2', 'b3', 'b4']) => {
  const registered = [{ model: model(merge) }];
  const second = ReadModelDb.open(join(dir, 'half.db'), registered, { indexes: false });
  const other = new ModelWriter(second, model(merge), second.state('log').generation, second.state('log'));
  secondStreams.forEach((stream, i) => other.apply(event(100 + i, stream, i * 100)));
  ModelWriter.commitAll(second, [other]);
  second.close();
  const db = ReadModelDb.open(join(dir, 'read.db'), registered);
  const generation = db.state('log').generation + 1;
  db.createGeneration('log', generation, { indexes: false });
  const writer = new ModelWriter(db, model(merge), generation, { position: 0, watermark: 0, events: 0 });
  for (let i = 0; i < 10; i++) writer.apply(event(1 + i, `a${i}`, i * 333));
  ModelWriter.commitAll(db, [writer]);
  return { db, writer };
};

const rowsOf = (db: ReadModelDb, table: string, generation: number) =>
  db.db.prepare(`SELECT * FROM "${db.tableName('log', table, generation)}" ORDER BY 1`).all();

describe('joining the halves of a split rebuild', () => {
  it('copies the rows of one stream, merges the rows both halves hold, and prunes what the joined time has passed', () => {
    const { db, writer } = halves(true);
    const cut = rowsOf(db, 'items', writer.generation).length;
    expect(cut).toBeLessThan(10);
    joinHalf(db, join(dir, 'half.db'), [writer]);
    ModelWriter.commitAll(db, [writer]);
    indexJoined(db, [writer]);
    // The second half's items are all older than the first half's cut: none survives the joined prune.
    expect(rowsOf(db, 'items', writer.generation)).toHaveLength(cut);
    expect(rowsOf(db, 'totals', writer.generation)).toEqual([{ scope: '*', n: 15 }]);
    expect(writer.checkpoint).toMatchObject({ events: 15, watermark: 2_997 });
    db.close();
  });

  it('refuses a key both halves wrote in a table without a merge, naming the model', () => {
    const { db, writer } = halves(false);
    joinHalf(db, join(dir, 'half.db'), [writer]);
    ModelWriter.commitAll(db, [writer]);
    expect(() => indexJoined(db, [writer])).toThrow(
      /read model 'log': a table has rows of one key from streams of both halves of the rebuild and no merge/,
    );
    db.close();
  });

  it('names the model too when the table refusing the key already has its key index (a table retention prunes)', () => {
    // `a9` in both halves (kept by the first): the items table, pruned, is indexed from the start and refuses the copy.
    const { db, writer } = halves(false, ['a9']);
    expect(() => joinHalf(db, join(dir, 'half.db'), [writer])).toThrow(
      /read model 'log': a table has rows of one key from streams of both halves of the rebuild and no merge \(UNIQUE constraint failed/,
    );
    db.close();
  });
});
