import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/node/logger.js';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import type { SchedulerNode } from '../../src/node/schedulerNode.js';
import type { FeedSink } from '../../src/projections/liveFeed.js';
import { READ_MODEL_STREAMS } from '../../src/projections/projectedEvent.js';
import { readModels, type ReadModelsOptions } from '../../src/projections/readModels.js';
import { ReadSide } from '../../src/projections/readSide.js';
import { SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';
import { type RecordingTarget, run, specOf, startNode } from '../unit/support/nodeHarness.js';

/**
 * The read side over a real SQLite log written by a real node: the models follow the log exactly, a
 * restart resumes at the checkpoint with nothing counted twice, and a rebuild run while the log grows
 * switches over with nothing lost — each checked against a full rebuild (`replay --check`).
 */

const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);
const modelOptions: ReadModelsOptions = {
  firesKeepMs: null,
  statistics: { keepMs: { minute: 2 * 86_400_000, hour: 90 * 86_400_000, day: 1_826 * 86_400_000 } },
};
const models = readModels(modelOptions);

let dir: string;
let store: SqliteEventStore;
let clock: SimulatedClock;
let node: SchedulerNode;
let target: RecordingTarget;
const sides: ReadSide[] = [];

const openReadSide = (file = join(dir, 'read.db'), sink: FeedSink = { send: () => {}, end: () => {} }): ReadSide => {
  const side = ReadSide.open({ store, file, models, clock, logger: silentLogger, sink });
  sides.push(side);
  side.start();
  return side;
};

/** Closes a read side before the test ends (its database free for the next one). */
const closeReadSide = (side: ReadSide): void => {
  side.close();
  sides.splice(sides.indexOf(side), 1);
};

/** Each model's live generation, in registration order. */
const generationsOf = (side: ReadSide): number[] => side.db.models.map((m) => side.db.state(m.model.name).generation);

/** Until the node's appends have landed (its writer thread commits off this loop) and the log stands still. */
const settled = async (): Promise<number> => {
  let head = -1;
  for (let still = 0; still < 3;) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    const now = Number(await store.headPosition());
    still = now === head ? still + 1 : 0;
    head = now;
  }
  return head;
};

/** Until the live models include everything the log holds. */
const caughtUp = async (side: ReadSide): Promise<void> => {
  const head = await settled();
  const deadline = Date.now() + 20_000;
  while (side.projector.position < head) {
    if (Date.now() > deadline) throw new Error(`read side stuck at ${side.projector.position} of ${head}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

/** Ten tasks every second for `seconds`, the target answering every other fire with a failure. */
const workload = async (seconds: number): Promise<void> => {
  let n = 0;
  target.deliver = (fire) => {
    target.delivered.push(fire);
    const status = n++ % 2 === 0 ? 'succeeded' : 'failed';
    queueMicrotask(() => target.answer(fire, status, clock.now() + 5, status === 'failed' ? 'no luck' : undefined));
  };
  await run(clock, seconds * 1_000, 250);
};

const count = (side: ReadSide, table: string): number =>
  side.db.db
    .prepare(`SELECT count(*) FROM "${side.db.tableName(...(table.split('.') as [string, string]))}"`)
    .pluck()
    .get() as number;

const firedInLog = async (): Promise<number> => (await store.readAll()).filter((e) => e.type === 'TaskFired').length;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-read-side-'));
  // Inline commits keep the node's appends in step with the simulated clock.
  store = SqliteEventStore.open(join(dir, 'kairos.db'), { writer: 'inline' });
  clock = new SimulatedClock(T0);
  ({ node, target } = await startNode({ store, clock }));
  for (let i = 0; i < 10; i++)
    await node.createTask(specOf({ id: `task-${i}`, overlap: 'allow' }), { actor: 'user:ops' });
});

afterEach(async () => {
  for (const side of sides.splice(0)) side.close();
  await node.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('read side over a SQLite log', () => {
  it('follows the log: one attempt row per TaskFired, the board, the audit and the totals agree with it', async () => {
    const side = openReadSide();
    await workload(5);
    await caughtUp(side);
    // Ten tasks every second for five seconds, whether on time or caught up.
    expect(await firedInLog()).toBeGreaterThanOrEqual(40);
    expect(count(side, 'fires.attempts')).toBe(await firedInLog());
    const board = await side.query('board', { sort: 'id', order: 'asc', limit: 100 });
    expect(board.total).toBe(10);
    const audit = await side.query('audit', { action: ['created'], limit: 100 });
    expect(audit.entries).toHaveLength(10);
    expect(audit.entries.every((e) => e.actor === 'user:ops')).toBe(true);
    const metrics = await side.query('metrics', {});
    expect(metrics.totals?.fires).toBe(await firedInLog());
    expect((metrics.totals?.succeeded ?? 0) + (metrics.totals?.failed ?? 0)).toBe(await firedInLog());
    const failed = await side.query('fires', { status: ['failed'], limit: 1_000 });
    expect(failed.fires.length).toBe(metrics.totals?.failed);
    expect(failed.fires.every((f) => f.message === 'no luck')).toBe(true);
  });

  it('a restart resumes at its checkpoint: equal to a full rebuild, nothing counted twice', async () => {
    const first = openReadSide();
    await workload(3);
    await caughtUp(first);
    closeReadSide(first);
    await workload(3);
    const second = openReadSide();
    await caughtUp(second);
    expect(count(second, 'fires.attempts')).toBe(await firedInLog());
    const { comparison } = await second.replay({ check: true });
    expect(comparison?.ok).toBe(true);
    expect(comparison?.tables.length).toBeGreaterThanOrEqual(8);
    expect(comparison?.tables.find((t) => t.table === 'attempts')?.rows).toBe(await firedInLog());
  });

  it('a rebuild while the log grows switches over with nothing lost or doubled', async () => {
    const side = openReadSide();
    await workload(5);
    await caughtUp(side);
    const generations = generationsOf(side);
    const replaying = side.replay({}, () => {});
    await workload(5);
    const { progress } = await replaying;
    expect(progress.phase).toBe('done');
    expect(generationsOf(side)).toEqual(generations.map((g) => g + 1));
    await workload(1);
    await caughtUp(side);
    expect(count(side, 'fires.attempts')).toBe(await firedInLog());
    expect((await side.replay({ check: true })).comparison?.ok).toBe(true);
  });

  /** The read side `kairos replay` opens with the node down: a second thread reads the log at `url`. */
  const offline = (url: string, options = modelOptions): ReadSide => {
    const side = ReadSide.open({
      store,
      file: join(dir, 'read.db'),
      models: readModels(options),
      clock,
      logger: silentLogger,
      sink: { send: () => {}, end: () => {} },
      apart: { store: url, models: options },
    });
    sides.push(side);
    return side;
  };

  it('with nobody following, a rebuild leaves the read side standing where its models now stand (a check in it then compares there)', async () => {
    await workload(2);
    const head = await settled();
    const split = offline(`sqlite:${join(dir, 'kairos.db')}`);
    expect(split.projector.position).toBe(0);
    await split.replay({});
    expect(split.projector.position).toBe(head);
    expect((await split.replay({ check: true })).comparison).toMatchObject({ ok: true, position: head });
    closeReadSide(split);
    // In one thread (no second thread configured) too.
    rmSync(join(dir, 'read.db'), { force: true });
    const single = ReadSide.open({
      store,
      file: join(dir, 'read.db'),
      models,
      clock,
      logger: silentLogger,
      sink: { send: () => {}, end: () => {} },
    });
    sides.push(single);
    await single.replay({});
    expect(single.projector.position).toBe(head);
    expect((await single.replay({ check: true })).comparison).toMatchObject({ ok: true, position: head });
  });

  it('with nobody following the log, a rebuild splits the log by stream over two threads and joins the halves', async () => {
    const live = openReadSide();
    await workload(4);
    await caughtUp(live);
    closeReadSide(live);
    const head = await settled();
    const side = offline(`sqlite:${join(dir, 'kairos.db')}`);
    const generations = generationsOf(side);
    const seen: string[] = [];
    const { progress } = await side.replay({}, (p) => seen.push(p.phase));
    expect(progress).toMatchObject({
      phase: 'done',
      position: head,
      models: ['board', 'fires', 'audit', 'cluster', 'stats'],
    });
    expect(seen.at(-1)).toBe('done');
    expect(generationsOf(side)).toEqual(generations.map((g) => g + 1));
    expect(side.db.models.map((m) => side.db.state(m.model.name).position)).toEqual(Array(5).fill(head));
    expect(count(side, 'fires.attempts')).toBe(await firedInLog());
    // Every event of the models' streams counted once, across both halves.
    const read = (await store.readAll()).filter((e) => READ_MODEL_STREAMS.some((p) => e.stream.startsWith(p))).length;
    expect(progress.events).toBe(read);
    expect(side.db.state('cluster').events).toBe(read);
    // Checked against a rebuild in one thread, into a scratch database.
    expect((await side.replay({ check: true })).comparison?.ok).toBe(true);
    // One model alone is split too.
    await side.replay({ models: ['stats'] });
    expect(side.db.state('stats').generation).toBe(generations[4]! + 2);
    expect((await side.replay({ check: true })).comparison?.ok).toBe(true);
    closeReadSide(side);

    // A second thread reading another log (here an empty one) stops elsewhere: nothing switches.
    const wrong = offline('memory:');
    await expect(wrong.replay({})).rejects.toThrow(/two threads stopped at different log positions \(\d+, 0\)/);
    expect(generationsOf(wrong)).toEqual(generations.map((g, i) => g + (i === 4 ? 2 : 1)));
    expect(count(wrong, 'fires.attempts')).toBe(await firedInLog());
    const leftovers = wrong.db.db
      .prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE '%\\_\\_g%' ESCAPE '\\'")
      .pluck()
      .get();
    expect(leftovers).toBe(10);
    expect(readdirSync(dir).filter((f) => f.includes('.rebuild-'))).toEqual([]);
    closeReadSide(wrong);

    // A second thread that fails stops the first one: its error is the one reported, nothing switches.
    const broken = offline('nope:');
    await expect(broken.replay({})).rejects.toThrow(/the rebuild's second thread failed: .*sqlite:<path>/);
    expect(generationsOf(broken)).toEqual(generations.map((g, i) => g + (i === 4 ? 2 : 1)));
    expect(readdirSync(dir).filter((f) => f.includes('.rebuild-'))).toEqual([]);
  });

  it("a rebuild split by stream prunes as one thread does, though each half's time runs behind the whole's", async () => {
    // A second of fires kept, and statistics minutes for 2 s: the halves' watermarks differ at every page.
    const short = { firesKeepMs: 1_000, statistics: { keepMs: { ...modelOptions.statistics.keepMs, minute: 2_000 } } };
    const live = ReadSide.open({
      store,
      file: join(dir, 'read.db'),
      models: readModels(short),
      clock,
      logger: silentLogger,
      sink: { send: () => {}, end: () => {} },
    });
    sides.push(live);
    live.start();
    await workload(6);
    await caughtUp(live);
    const kept = count(live, 'fires.attempts');
    closeReadSide(live);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(await firedInLog());
    const side = offline(`sqlite:${join(dir, 'kairos.db')}`, short);
    await side.replay({});
    expect(count(side, 'fires.attempts')).toBe(kept);
    expect((await side.replay({ check: true })).comparison?.ok).toBe(true);
  });

  it('a check counts rows too (a row twice is not hidden by the set comparison); scratch files a killed replay left are removed at open', async () => {
    const side = openReadSide();
    await workload(2);
    await caughtUp(side);
    const table = side.db.tableName('fires', 'attempts');
    side.db.db.exec(`DROP INDEX "${table}__key"`);
    side.db.db.exec(`INSERT INTO "${table}" SELECT * FROM "${table}" LIMIT 1`);
    const { comparison } = await side.replay({ check: true });
    expect(comparison?.ok).toBe(false);
    const attempts = comparison?.tables.find((t) => t.table === 'attempts');
    expect(attempts).toMatchObject({ onlyLive: 0, onlyRebuilt: 0 });
    expect(attempts?.rows).toBe((attempts?.rebuiltRows ?? 0) + 1);
    closeReadSide(side);

    // Another read database beside it: this one now holds a row twice, which its key's index refuses at open.
    for (const name of ['again.db.rebuild-1', 'again.db.rebuild-1-wal', 'again.db.check-2', 'other.db.check-3'])
      writeFileSync(join(dir, name), 'left over');
    openReadSide(join(dir, 'again.db'));
    expect(readdirSync(dir).filter((f) => f.includes('.rebuild-') || f.includes('.check-'))).toEqual([
      'other.db.check-3',
    ]);
  });

  it('rebuilds one model from a position on: its rows then describe only what follows it', async () => {
    const side = openReadSide();
    await workload(2);
    await caughtUp(side);
    const from = side.projector.position;
    await workload(2);
    await side.replay({ models: ['fires'], from });
    await caughtUp(side);
    const after = (await store.readAll({ after: BigInt(from) })).filter((e) => e.type === 'TaskFired').length;
    expect(count(side, 'fires.attempts')).toBe(after);
    expect(side.db.state('board').generation).toBe(1);
  });

  it('a live feed the node does not take stops at a bound, then resumes from where it stood: nothing lost, nothing twice', async () => {
    const chunks: string[] = [];
    const side = openReadSide(join(dir, 'read.db'), { send: (_id, chunk) => chunks.push(chunk), end: () => {} });
    const reason = 'r'.repeat(2_000);
    for (let round = 0; round < 150; round++) {
      await store.appendBatch(
        Array.from({ length: 10 }, (_, i) => ({
          stream: `kairos-task-task-${i}`,
          events: [0, 1].map((k) => ({
            id: randomUUID(),
            type: k === 0 ? 'TaskPaused' : 'TaskResumed',
            data: { v: 1, taskId: `task-${i}`, at: new Date(T0 + round * 1_000 + k).toISOString(), reason },
            metadata: { actor: 'user:ops' },
          })),
        })),
      );
    }
    await caughtUp(side);
    side.openFeed(1, 0, { types: ['TaskPaused', 'TaskResumed'] }, 4 * 1_048_576);
    const bytes = () => chunks.reduce((n, c) => n + c.length, 0);
    await expect.poll(bytes, { timeout: 10_000 }).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Nothing acknowledged: it stopped at its window (4 MiB), one event over at most.
    const sentBeforeAck = bytes();
    expect(sentBeforeAck).toBeLessThanOrEqual(4 * 1_048_576 + 65_536);
    const expected = (await store.readAll()).filter((e) => e.type === 'TaskPaused' || e.type === 'TaskResumed').length;
    const ids = () => chunks.join('').match(/^id: \d+$/gm) ?? [];
    expect(ids().length).toBeLessThan(expected);
    // The node takes everything: the feed reads the log from where it stood and finishes.
    let acked = 0;
    while (ids().length < expected) {
      const now = bytes();
      side.ackFeed(1, now - acked);
      acked = now;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const positions = ids().map((line) => Number(line.slice(4)));
    expect(new Set(positions).size).toBe(positions.length);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  });

  it('refuses a read database another read side holds; its lock goes with it', () => {
    const first = openReadSide();
    expect(() => openReadSide()).toThrow(/is in use by another process/);
    closeReadSide(first);
    expect(() => openReadSide()).not.toThrow();
  });

  it('the board as it was is filtered, sorted and paged like the live one', async () => {
    const side = openReadSide();
    await run(clock, 2_000, 500);
    const before = clock.now();
    await run(clock, 1_000, 500);
    for (const id of ['task-3', 'task-7']) await node.pauseTask(id, { actor: 'user:ops' }, 'later');
    await node.createTask(specOf({ id: 'task-new' }), { actor: 'user:ops' });
    await caughtUp(side);
    const then = await side.query('boardAt', { at: before, sort: 'id', order: 'desc', limit: 4 });
    expect(then.total).toBe(10);
    expect(then.tasks.map((t) => t.id)).toEqual(['task-9', 'task-8', 'task-7', 'task-6']);
    const cursor = JSON.parse(Buffer.from(then.next as string, 'base64url').toString()) as [string, string];
    const rest = await side.query('boardAt', { at: before, sort: 'id', order: 'desc', limit: 10, cursor });
    expect(rest.tasks).toHaveLength(6);
    const pausedThen = await side.query('boardAt', {
      at: before,
      status: ['paused'],
      sort: 'id',
      order: 'asc',
      limit: 10,
    });
    expect(pausedThen.total).toBe(0);
    const pausedNow = await side.query('boardAt', {
      at: clock.now(),
      status: ['paused'],
      sort: 'id',
      order: 'asc',
      limit: 10,
    });
    expect(pausedNow.tasks.map((t) => [t.id, t.paused?.reason])).toEqual([
      ['task-3', 'later'],
      ['task-7', 'later'],
    ]);
  });

  it('point in time: a task changed five times shows the definition in force at each time', async () => {
    const side = openReadSide();
    const times: Array<{ at: number; every: number }> = [];
    for (const every of [2_000, 3_000, 4_000, 5_000, 6_000]) {
      await run(clock, 10_000, 500);
      await node.updateTask(specOf({ id: 'task-0', overlap: 'allow', schedule: { every } }), { actor: 'user:ops' });
      times.push({ at: clock.now() + 1_000, every });
    }
    await run(clock, 2_000, 500);
    await caughtUp(side);
    const created = await side.query('taskAt', { task: 'task-0', at: T0 + 500 });
    expect(created.spec?.schedule).toEqual({ every: 1_000 });
    for (const { at, every } of times) {
      const then = await side.query('taskAt', { task: 'task-0', at });
      expect(then.spec?.schedule, new Date(at).toISOString()).toEqual({ every });
    }
    await expect(side.query('taskAt', { task: 'task-0', at: T0 - 1_000 })).rejects.toThrow(/did not exist/);
    const changes = await side.query('changes', { task: 'task-0', limit: 100 });
    expect(changes.changes.map((c) => c.action)).toEqual([
      'created',
      'updated',
      'updated',
      'updated',
      'updated',
      'updated',
    ]);
    expect(changes.changes[1]?.changes).toEqual([{ path: 'schedule.every', before: 1_000, after: 2_000 }]);
  });
});
