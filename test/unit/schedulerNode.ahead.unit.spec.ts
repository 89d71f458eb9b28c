import { afterEach, describe, expect, it } from 'vitest';
import { taskStreamOf } from '../../domain/task/events.js';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import type { Clock } from '../../src/clock/clock.js';
import { RELEASE_TOLERANCE_MS } from '../../src/node/firesAhead.js';
import type { AppendOptions, EventData, StreamAppend } from '../../src/store/eventStore.js';
import type { Lease } from '../../src/coordination/coordinator.js';
import type { SchedulerNode } from '../../src/node/schedulerNode.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import { FixedLeaseCoordinator, firedOf, flush, run, specOf, startNode } from './support/nodeHarness.js';

const T0 = Date.UTC(2026, 2, 1, 0, 0, 0);
const at = (ms: number) => new Date(T0 + ms).toISOString();
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

  /** A node deciding fires `LEAD` ms ahead, stopped after the test. */
  const start = async (options: Omit<Parameters<typeof startNode>[0], 'fireLeadMs'>) => {
    const started = await startNode({ ...options, fireLeadMs: LEAD });
    nodes.push(started.node);
    return started;
  };

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
    const boot = () => start({ store, clock: clockOf(clock), autoSucceed: true });
    return { clock, store, batches, boot };
  };

  const createAll = async (node: SchedulerNode, n: number) => {
    for (let i = 0; i < n; i++)
      await node.createTask(specOf({ id: `t${i}`, schedule: { cron: '* * * * * *' }, overlap: 'allow' }), actor);
  };

  it('decides the fires of an instant ahead, appends them as one batch when due, and delivers them after it', async () => {
    const { clock, store, batches, boot } = setup();
    const { node, target } = await boot();
    await createAll(node, 150);
    await run(clock, 800);
    // Decided at 500 ms, held: nothing is written or delivered before the instant.
    expect(firedOf(await store.readAll())).toHaveLength(0);
    expect(target.delivered).toHaveLength(0);
    expect(node.wakeAt('t0')).toBe(T0 + 1_000);
    await run(clock, 300);
    expect(batches.filter((b) => b.appends === 150)).toEqual([{ at: T0 + 1_000, appends: 150 }]);
    const fired = firedOf(await store.readAll());
    expect(fired).toHaveLength(150);
    expect(new Set(fired.map((f) => f.firedAt))).toEqual(new Set([new Date(T0 + 1_000).toISOString()]));
    expect(target.delivered.map((d) => d.fireId).sort()).toEqual(fired.map((f) => f.fireId).sort());
    // The outcomes (answered at once) are recorded too, and the next instant goes out the same way.
    await run(clock, 1_000);
    const log = await store.readAll();
    expect(log.filter((e) => e.type === 'TaskSucceeded')).toHaveLength(300);
    expect(firedOf(log)).toHaveLength(300);
    expect(batches.filter((b) => b.appends === 150).map((b) => b.at)).toEqual([T0 + 1_000, T0 + 2_000]);
  });

  it('decides again at the instant a task that changed after its decision was made', async () => {
    const { clock, store, boot } = setup();
    const { node } = await boot();
    await createAll(node, 150);
    await run(clock, 700);
    await node.pauseTask('t1', actor, 'maintenance');
    await run(clock, 400);
    const fired = firedOf(await store.readAll());
    expect(fired).toHaveLength(149);
    expect(fired.map((f) => f.taskId)).not.toContain('t1');
    await node.resumeTask('t1', actor);
    await run(clock, 1_000);
    expect(firedOf(await store.readAll()).filter((f) => f.taskId === 't1')).toHaveLength(1);
  });

  it('decides again at the release, recording when it really fired, a release later than the tolerance', async () => {
    let late: ReturnType<typeof lateBy> | undefined;
    const { clock, store, batches, boot } = setup((c) => (late = lateBy(c)));
    const { node } = await boot();
    await createAll(node, 150);
    await run(clock, 900);
    (late as ReturnType<typeof lateBy>).skew = RELEASE_TOLERANCE_MS + 20;
    await run(clock, 200);
    const fired = firedOf(await store.readAll());
    expect(fired).toHaveLength(150);
    // Decided again at the release, still as one batch.
    expect(batches.filter((b) => b.appends === 150)).toEqual([{ at: T0 + 1_000, appends: 150 }]);
    for (const f of fired) expect(Date.parse(f.firedAt) - Date.parse(f.scheduledAt)).toBe(RELEASE_TOLERANCE_MS + 20);
  });

  it('decides the few tasks due at an instant when due, not ahead (spread ticks)', async () => {
    const { clock, store, batches, boot } = setup();
    const { node, target } = await boot();
    await createAll(node, 20);
    await run(clock, 1_100);
    expect(firedOf(await store.readAll())).toHaveLength(20);
    expect(target.delivered).toHaveLength(20);
    expect(batches.filter((b) => b.appends >= 20)).toEqual([]);
  });

  it('fires nothing held once stopped', async () => {
    const { clock, store, boot } = setup();
    const { node } = await boot();
    await createAll(node, 150);
    await run(clock, 700);
    await node.stop();
    clock.increment(1_000);
    await flush();
    expect(firedOf(await store.readAll())).toHaveLength(0);
  });

  /** A log whose appends wait while `held`, until `open()`: a slow disk, on cue. */
  class HeldStore extends InMemoryEventStore {
    held: (appends: number) => boolean = () => false;
    readonly #waiting: Array<() => void> = [];
    open(): void {
      for (const go of this.#waiting.splice(0)) go();
    }
    #turn(appends: number): Promise<void> {
      return this.held(appends) ? new Promise((resolve) => this.#waiting.push(resolve)) : Promise.resolve();
    }
    override appendToStream(stream: string, events: readonly EventData[], options?: AppendOptions) {
      return this.#turn(1).then(() => super.appendToStream(stream, events, options));
    }
    override appendBatch(appends: readonly StreamAppend[]) {
      return this.#turn(appends.length).then(() => super.appendBatch(appends));
    }
  }

  it('records an outcome that arrives while a large instant goes out before deciding anything else about its task', async () => {
    // Task z fires at +1 s with a 1.5 s timeout; at +2 s an instant of 1,000 fires is slow to write;
    // z's handler answers at +2.1 s, in time. Its deadline (+2.5 s) must not be decided ahead of that
    // answer: it would record a timeout and fire a retry of a fire that succeeded.
    const clock = new SimulatedClock(T0);
    const store = new HeldStore({ now: () => clock.now() });
    store.held = (appends) => appends >= 1_000;
    const { node, target } = await start({ store, clock });
    await node.createTask(
      specOf({
        id: 'z',
        schedule: { every: '10s', startAt: at(1_000) },
        timeout: '1500ms',
        retry: { maxAttempts: 2, backoff: { initial: '100ms', jitter: 0 } },
      }),
      actor,
    );
    for (let i = 0; i < 1_000; i++)
      await node.createTask(
        specOf({ id: `b${i}`, schedule: { every: '10s', startAt: at(2_000) }, overlap: 'allow' }),
        actor,
      );
    await run(clock, 2_100);
    const fire = target.delivered.find((d) => d.taskId === 'z');
    expect(fire).toBeDefined();
    target.answer(fire!, 'succeeded', clock.now());
    await flush();
    expect(node.pipeline().outcomesWaiting).toBe(1);
    await run(clock, 600);
    store.open();
    await flush(30);
    const types = (await store.readStream(taskStreamOf('z'))).map((e) => e.type);
    expect(types).toContain('TaskSucceeded');
    expect(types).not.toContain('TaskFailed');
    expect(target.delivered.filter((d) => d.taskId === 'z')).toHaveLength(1);
    expect(node.pipeline().outcomesWaiting).toBe(0);
  });

  it('keeps the decisions under way within maxDecisionsInFlight at a release', async () => {
    const clock = new SimulatedClock(T0);
    const store = new HeldStore({ now: () => clock.now() });
    const { node } = await start({ store, clock, maxDecisionsInFlight: 50 });
    for (let i = 0; i < 100; i++)
      await node.createTask(
        specOf({ id: `t${i}`, schedule: { every: '10s', startAt: at(1_000) }, overlap: 'allow' }),
        actor,
      );
    await run(clock, 900);
    store.held = () => true;
    clock.increment(100);
    let max = 0;
    for (let i = 0; i < 10; i++) {
      await flush(1);
      max = Math.max(max, node.pipeline().decisionsInFlight);
    }
    expect(max).toBe(50);
    store.held = () => false;
    for (let i = 0; i < 5; i++) {
      store.open();
      await flush(10);
    }
    expect(firedOf(await store.readAll())).toHaveLength(100);
  });

  it('writes no more of a large instant once stopping', async () => {
    const clock = new SimulatedClock(T0);
    const store = new InMemoryEventStore({ now: () => clock.now() });
    const { node } = await start({ store, clock });
    for (let i = 0; i < 2_500; i++)
      await node.createTask(
        specOf({ id: `b${i}`, schedule: { every: '10s', startAt: at(1_000) }, overlap: 'allow' }),
        actor,
      );
    await run(clock, 900);
    clock.increment(100);
    await node.stop();
    // The first part (1,000 fires) went out at the instant; the rest was not written.
    expect(firedOf(await store.readAll())).toHaveLength(1_000);
    await flush(10);
    expect(firedOf(await store.readAll())).toHaveLength(1_000);
  });

  /** A coordinator whose lease the test moves: given up (null), or renewed at a newer epoch. */
  class MovingLeaseCoordinator extends FixedLeaseCoordinator {
    lease: Lease | null;
    constructor(nodeId: string, epoch: number) {
      super(nodeId, epoch);
      this.lease = { node: nodeId, epoch };
    }
    override leaseFor(): Lease {
      return this.lease as Lease;
    }
    move(lease: Lease | null): void {
      this.lease = lease;
      this.events$.next({ type: 'leases-changed' });
    }
  }

  const nodeWithLease = async (store: InMemoryEventStore, clock: SimulatedClock) => {
    let coordinator: MovingLeaseCoordinator | undefined;
    const { node } = await start({
      store,
      clock,
      coordinator: (id, epoch) => (coordinator = new MovingLeaseCoordinator(id, epoch)),
    });
    return { node, coordinator: coordinator as MovingLeaseCoordinator };
  };

  it('fires nothing decided ahead under a lease given up before the instant', async () => {
    const clock = new SimulatedClock(T0);
    const store = new InMemoryEventStore({ now: () => clock.now() });
    const { node, coordinator } = await nodeWithLease(store, clock);
    await createAll(node, 150);
    await run(clock, 800);
    expect(node.pipeline().heldAhead).toBe(150);
    coordinator.move(null);
    await run(clock, 500);
    expect(firedOf(await store.readAll())).toHaveLength(0);
    expect(node.pipeline().heldAhead).toBe(0);
  });

  it('fires under the newer epoch when the lease is renewed between the decision and the instant', async () => {
    const clock = new SimulatedClock(T0);
    const store = new InMemoryEventStore({ now: () => clock.now() });
    const { node, coordinator } = await nodeWithLease(store, clock);
    await createAll(node, 150);
    await run(clock, 800);
    const epoch = (coordinator.lease as Lease).epoch + 1;
    coordinator.move({ node: 'n1', epoch });
    await run(clock, 500);
    const fired = firedOf(await store.readAll());
    expect(fired).toHaveLength(150);
    expect(new Set(fired.map((f) => f.epoch))).toEqual(new Set([epoch]));
  });
});
