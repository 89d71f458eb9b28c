import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import type { Clock } from '../../src/clock/clock.js';
import { RELEASE_TOLERANCE_MS } from '../../src/node/firesAhead.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import { firedOf, flush, run, specOf, startNode } from './support/nodeHarness.js';

const T0 = Date.UTC(2026, 2, 1, 0, 0, 0);
const actor = { actor: 'user:test' };
const LEAD = 500;

/** The simulated clock, read `skew` ms late: a timer that runs that long after it fell due, as on a busy loop. */
const lateBy = (clock: SimulatedClock): Clock & { skew: number } => {
  const late: Clock & { skew: number } = {
    skew: 0,
    now: () => clock.now() + late.skew,
    setTimer: (callback, delayMs) => clock.setTimer(callback, delayMs),
  };
  return late;
};

describe('SchedulerNode deciding fires ahead of their instant (fireLeadMs)', () => {
  const nodes: Array<{ stop(): Promise<void> }> = [];
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop();
  });

  /** A store that notes each batch: how many appends, and when. */
  const setup = (clockOf: (clock: SimulatedClock) => Clock = (c) => c) => {
    const clock = new SimulatedClock(T0);
    const store = new InMemoryEventStore({ now: () => clock.now() });
    const batches: Array<{ at: number; appends: number }> = [];
    const appendBatch = store.appendBatch.bind(store);
    store.appendBatch = (appends) => {
      batches.push({ at: clock.now(), appends: appends.length });
      return appendBatch(appends);
    };
    const boot = async (options: { autoSucceed?: boolean } = {}) => {
      const started = await startNode({
        store,
        clock: clockOf(clock) as SimulatedClock,
        fireLeadMs: LEAD,
        autoSucceed: options.autoSucceed ?? true,
      });
      nodes.push(started.node);
      return started;
    };
    return { clock, store, batches, boot };
  };

  const createAll = async (node: { createTask: (...a: never[]) => unknown }, n: number) => {
    for (let i = 0; i < n; i++)
      await (node.createTask as (spec: unknown, ctx: unknown) => Promise<unknown>)(
        specOf({ id: `t${i}`, schedule: { cron: '* * * * * *' }, overlap: 'allow' }),
        actor,
      );
  };

  it('decides the fires of an instant ahead, appends them as one batch when due, and delivers them after it', async () => {
    const { clock, store, batches, boot } = setup();
    const { node, target } = await boot();
    await createAll(node, 50);
    await run(clock, 800);
    // Decided at 500 ms, held: nothing is written or delivered before the instant.
    expect(firedOf(await store.readAll())).toHaveLength(0);
    expect(target.delivered).toHaveLength(0);
    expect(node.wakeAt('t0')).toBe(T0 + 1_000);
    await run(clock, 300);
    expect(batches.filter((b) => b.appends === 50)).toEqual([{ at: T0 + 1_000, appends: 50 }]);
    const fired = firedOf(await store.readAll());
    expect(fired).toHaveLength(50);
    expect(new Set(fired.map((f) => f.firedAt))).toEqual(new Set([new Date(T0 + 1_000).toISOString()]));
    expect(target.delivered.map((d) => d.fireId).sort()).toEqual(fired.map((f) => f.fireId).sort());
    // The outcomes (answered at once) are recorded too, and the next instant goes out the same way.
    await run(clock, 1_000);
    const log = await store.readAll();
    expect(log.filter((e) => e.type === 'TaskSucceeded')).toHaveLength(100);
    expect(firedOf(log)).toHaveLength(100);
    expect(batches.filter((b) => b.appends === 50).map((b) => b.at)).toEqual([T0 + 1_000, T0 + 2_000]);
  });

  it('decides again at the instant a task that changed after its decision was made', async () => {
    const { clock, store, boot } = setup();
    const { node } = await boot();
    await createAll(node, 3);
    await run(clock, 700);
    await node.pauseTask('t1', actor, 'maintenance');
    await run(clock, 400);
    const fired = firedOf(await store.readAll());
    expect(fired.map((f) => f.taskId).sort()).toEqual(['t0', 't2']);
    await node.resumeTask('t1', actor);
    await run(clock, 1_000);
    expect(firedOf(await store.readAll()).filter((f) => f.taskId === 't1')).toHaveLength(1);
  });

  it('decides again, recording when it really fired, a release that comes later than the tolerance', async () => {
    let late: ReturnType<typeof lateBy> | undefined;
    const { clock, store, batches, boot } = setup((c) => (late = lateBy(c)));
    const { node } = await boot();
    await createAll(node, 5);
    await run(clock, 900);
    (late as ReturnType<typeof lateBy>).skew = RELEASE_TOLERANCE_MS + 20;
    await run(clock, 200);
    const fired = firedOf(await store.readAll());
    expect(fired).toHaveLength(5);
    expect(batches.filter((b) => b.appends === 5)).toEqual([]);
    for (const f of fired) expect(Date.parse(f.firedAt) - Date.parse(f.scheduledAt)).toBe(RELEASE_TOLERANCE_MS + 20);
  });

  it('fires nothing held once stopped', async () => {
    const { clock, store, boot } = setup();
    const { node } = await boot();
    await createAll(node, 5);
    await run(clock, 700);
    await node.stop();
    clock.increment(1_000);
    await flush();
    expect(firedOf(await store.readAll())).toHaveLength(0);
  });
});
