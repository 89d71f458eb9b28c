import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import { SchedulerNode } from '../../src/node/schedulerNode.js';
import { writeSnapshot, type SnapshotRecord } from '../../src/node/stateSnapshot.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import type { ReadAllOptions, RecordedEvent } from '../../src/store/eventStore.js';
import { FixedLeaseCoordinator, RecordingTarget, run, specOf } from './support/nodeHarness.js';

const T0 = Date.UTC(2026, 2, 1, 0, 0, 0);
const actor = { actor: 'user:test' };

/** An in-memory log that counts the events `readAll` hands out: how much of the log a start folded. */
class CountingStore extends InMemoryEventStore {
  eventsRead = 0;
  override async readAll(options?: ReadAllOptions): Promise<RecordedEvent[]> {
    const events = await super.readAll(options);
    this.eventsRead += events.length;
    return events;
  }
}

describe('SchedulerNode state snapshots', () => {
  let dir: string;
  let clock: SimulatedClock;
  let store: CountingStore;
  const running: SchedulerNode[] = [];
  let lines: Array<{ msg: string; problem?: string; tasks?: number }>;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kairos-snapshot-'));
    clock = new SimulatedClock(T0);
    store = new CountingStore({ now: () => clock.now() });
    lines = [];
  });
  afterEach(async () => {
    for (const node of running.splice(0)) await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const file = () => join(dir, 'node-state.snapshot');
  const logger = () =>
    pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
          done();
        },
      }),
    );
  /** A node answering every fire at once; with a snapshot file unless `snapshot: false`. */
  const boot = async (options: { snapshot?: boolean; on?: InMemoryEventStore } = {}) => {
    const target = new RecordingTarget();
    const node = new SchedulerNode({
      nodeId: 'n1',
      store: options.on ?? store,
      clock,
      target,
      logger: logger(),
      drainTimeoutMs: 0,
      coordinator: ({ maxEpoch }) => new FixedLeaseCoordinator('n1', maxEpoch + 1),
      ...(options.snapshot === false ? {} : { snapshot: { file: file(), everyMs: 60_000 } }),
    });
    target.listener = (o) => void node.reportOutcome(o);
    const deliver = target.deliver.bind(target);
    target.deliver = (fire) => {
      deliver(fire);
      queueMicrotask(() => target.answer(fire, 'succeeded', clock.now()));
    };
    running.push(node);
    await node.start();
    return node;
  };
  const stop = async (node: SchedulerNode) => {
    await node.stop();
    running.splice(running.indexOf(node), 1);
  };
  const statesOf = (node: SchedulerNode) =>
    new Map([...node.tasks()].map((r) => [r.taskId, { revision: r.revision, state: r.state }]));

  it('a start folds only the log after the snapshot its predecessor saved on stop, to the same states as a full replay', async () => {
    const first = await boot();
    for (let i = 0; i < 20; i++)
      await first.createTask(
        specOf({ id: `t${i}`, overlap: 'allow', ...(i % 3 === 0 ? { retry: { maxAttempts: 3 } } : {}) }),
        actor,
      );
    await run(clock, 5_000);
    await stop(first);
    expect(existsSync(file())).toBe(true);
    expect(lines.some((l) => l.msg === 'state snapshot saved' && l.tasks === 20)).toBe(true);

    // Changes after the snapshot, by a node that keeps none: the next start must fold them.
    const other = await boot({ snapshot: false });
    await other.createTask(specOf({ id: 'late' }), actor);
    await other.pauseTask('t1', actor, 'maintenance');
    await run(clock, 2_000);
    await stop(other);
    const head = Number(await store.headPosition());

    store.eventsRead = 0;
    const restored = await boot();
    const tail = store.eventsRead;
    expect(lines.some((l) => l.msg === 'state snapshot loaded' && l.tasks === 20)).toBe(true);
    expect(tail).toBeGreaterThan(0);
    expect(tail).toBeLessThan(head / 2);
    const fromSnapshot = statesOf(restored);
    await stop(restored);

    store.eventsRead = 0;
    const replayed = await boot({ snapshot: false });
    expect(store.eventsRead).toBe(head);
    expect(fromSnapshot).toEqual(statesOf(replayed));
    expect(fromSnapshot.get('t1')?.state.status).toBe('paused');
    expect(fromSnapshot.has('late')).toBe(true);
  });

  it('a record the snapshot holds behind the log is read again from its stream, not taken as truncated', async () => {
    const first = await boot();
    await first.createTask(specOf({ id: 't1', overlap: 'allow' }), actor);
    await first.createTask(specOf({ id: 't2' }), actor);
    await run(clock, 1_500);
    const early = first.get('t1')!;
    const behind = { revision: early.revision, state: early.state };
    await run(clock, 2_000);
    await stop(first);
    // The saved snapshot, with t1 as it was earlier (as if an event had been passed over and never applied).
    const lines = readFileSync(file(), 'utf8').trimEnd().split('\n');
    const header = JSON.parse(lines.at(-1)!) as {
      position: string;
      maxEpoch: number;
      anchor: { stream: string; revision: string };
    };
    const records = lines.slice(0, -1).map((l) => JSON.parse(l) as SnapshotRecord);
    const t1 = records.find((r) => r[0] === 't1')!;
    t1[1] = String(behind.revision);
    t1[4] = behind.state;
    await writeSnapshot(file(), store, {
      position: BigInt(header.position),
      maxEpoch: header.maxEpoch,
      records,
      lastFollowed: () => ({ stream: header.anchor.stream, revision: BigInt(header.anchor.revision) }),
    });
    // t1 moves on after the snapshot: its replay finds the revisions it skipped.
    const other = await boot({ snapshot: false });
    await other.pauseTask('t1', actor);
    await stop(other);

    const restored = await boot();
    const fromSnapshot = statesOf(restored);
    await stop(restored);
    const replayed = await boot({ snapshot: false });
    expect(fromSnapshot.get('t1')).toEqual(statesOf(replayed).get('t1'));
    expect(fromSnapshot.get('t1')?.state.status).toBe('paused');
  });

  it('replays the whole log, saying why, when the snapshot is damaged or of another log', async () => {
    const first = await boot();
    for (let i = 0; i < 5; i++) await first.createTask(specOf({ id: `t${i}` }), actor);
    await run(clock, 3_000);
    await stop(first);
    const saved = readFileSync(file());
    const head = Number(await store.headPosition());

    // One byte of the body changed.
    const damaged = Buffer.from(saved);
    damaged[10] = damaged[10] === 0x31 ? 0x32 : 0x31;
    writeFileSync(file(), damaged);
    store.eventsRead = 0;
    const afterDamage = await boot();
    expect(store.eventsRead).toBe(head);
    expect(lines.findLast((l) => l.msg.startsWith('no usable state snapshot'))?.problem).toMatch(/checksum/);
    expect(afterDamage.taskCount).toBe(5);
    await stop(afterDamage);

    // The same file beside another log (a restore from a backup, another cluster's log).
    writeFileSync(file(), saved);
    lines = [];
    const elsewhere = new CountingStore({ now: () => clock.now() });
    const seeder = await boot({ snapshot: false, on: elsewhere });
    for (let i = 0; i < 3; i++) await seeder.createTask(specOf({ id: `other-${i}` }), actor);
    await stop(seeder);
    const onOtherLog = await boot({ on: elsewhere });
    expect(lines.find((l) => l.msg.startsWith('no usable state snapshot'))?.problem).toMatch(/position/);
    expect([...onOtherLog.tasks()].map((r) => r.taskId).sort()).toEqual(['other-0', 'other-1', 'other-2']);
  });

  it('saves one every interval while the log moves, not while it does not', async () => {
    const node = await boot();
    await node.createTask(specOf({ id: 'a' }), actor);
    await run(clock, 61_000, 1_000);
    await until(() => lines.filter((l) => l.msg === 'state snapshot saved').length === 1);
    await node.pauseTask('a', actor);
    await run(clock, 60_000, 1_000);
    await until(() => lines.filter((l) => l.msg === 'state snapshot saved').length === 2);
    // Paused: nothing moves, nothing is saved.
    await run(clock, 120_000, 5_000);
    expect(lines.filter((l) => l.msg === 'state snapshot saved')).toHaveLength(2);
  });
});

const until = async (condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
};
