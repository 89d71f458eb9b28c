import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import { SchedulerNode } from '../../src/node/schedulerNode.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import type {
  AppendOptions,
  AppendResult,
  BatchAppendResult,
  EventData,
  StreamAppend,
} from '../../src/store/eventStore.js';
import { FixedLeaseCoordinator, RecordingTarget, firedOf, flush, specOf } from './support/nodeHarness.js';

const T0 = Date.UTC(2026, 2, 1, 0, 0, 0);
const TASKS = 400;
const MAX_IN_FLIGHT = 50;

/**
 * A log that writes at most `perSecond` appends per second of simulated time (in steps of 100 ms),
 * like a disk that cannot keep up: appends beyond wait in its queue. `perSecond: null` — no limit.
 */
class LimitedStore extends InMemoryEventStore {
  perSecond: number | null;
  readonly #waiting: Array<() => void> = [];
  maxWaiting = 0;

  constructor(clock: SimulatedClock, perSecond: number) {
    super({ now: () => clock.now() });
    this.perSecond = perSecond;
    const release = (): void => {
      const n = this.perSecond === null ? this.#waiting.length : this.perSecond / 10;
      for (const go of this.#waiting.splice(0, n)) go();
      clock.setTimer(release, 100);
    };
    clock.setTimer(release, 100);
  }

  /** No limit any more: what waits is written at once. */
  unlimit(): void {
    this.perSecond = null;
    for (const go of this.#waiting.splice(0)) go();
  }

  override appendToStream(
    stream: string,
    events: readonly EventData[],
    options?: AppendOptions,
  ): Promise<AppendResult> {
    if (this.perSecond === null) return super.appendToStream(stream, events, options);
    const turn = new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.maxWaiting = Math.max(this.maxWaiting, this.#waiting.length);
    return turn.then(() => super.appendToStream(stream, events, options));
  }

  /** A batch (the fires of one instant, decided ahead) waits for one turn per append in it. */
  override appendBatch(appends: readonly StreamAppend[]): Promise<BatchAppendResult[]> {
    if (this.perSecond === null) return super.appendBatch(appends);
    const turns = appends.map(() => new Promise<void>((resolve) => this.#waiting.push(resolve)));
    this.maxWaiting = Math.max(this.maxWaiting, this.#waiting.length);
    return Promise.all(turns).then(() => super.appendBatch(appends));
  }
}

describe('SchedulerNode past capacity (simulated clock)', () => {
  let node: SchedulerNode | undefined;
  let store: LimitedStore | undefined;
  afterEach(async () => {
    store?.unlimit();
    await node?.stop();
    node = undefined;
  });

  it.each([
    ['each decided when due', 0],
    ['decided ahead of their instant', 500],
  ])(
    'keeps every queue bounded, records the ticks it cannot fire as an overload, and recovers when the load drops (%s)',
    async (_, fireLeadMs) => {
      const clock = new SimulatedClock(T0);
      // Each tick of each task is two appends (the fire, its outcome): 800 a second wanted, 300 possible.
      store = new LimitedStore(clock, 300);
      const limited = store;
      const lines: Array<{ level: number; msg: string; missedTicks?: number }> = [];
      const logger = pino(
        { level: 'info' },
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
            done();
          },
        }),
      );
      const target = new RecordingTarget();
      node = new SchedulerNode({
        nodeId: 'n1',
        store,
        clock,
        target,
        logger,
        drainTimeoutMs: 0,
        maxDecisionsInFlight: MAX_IN_FLIGHT,
        fireLeadMs,
        coordinator: () => new FixedLeaseCoordinator('n1', 1),
      });
      const running = node;
      target.listener = (o) => void running.reportOutcome(o);
      const deliver = target.deliver.bind(target);
      target.deliver = (fire) => {
        deliver(fire);
        queueMicrotask(() => target.answer(fire, 'succeeded', clock.now()));
      };
      await node.start();
      store.perSecond = null;
      for (let i = 0; i < TASKS; i++) {
        const at = new Date(T0 + Math.floor((i * 1000) / TASKS)).toISOString();
        void node.createTask(
          specOf({ id: `t${i}`, schedule: { every: '1s', startAt: at }, overlap: 'allow', timeout: '30s' }),
          { actor: 'user:test' },
        );
      }
      await flush(20);
      clock.increment(100);
      await flush(20);
      store.perSecond = 300;
      store.maxWaiting = 0;

      let maxInFlight = 0;
      let maxWaiting = 0;
      let maxHeld = 0;
      let maxOutcomesWaiting = 0;
      const step = async (ms: number, rounds = 3): Promise<void> => {
        for (let passed = 0; passed < ms; passed += 50) {
          clock.increment(50);
          await flush(rounds);
          const p = node!.pipeline();
          maxInFlight = Math.max(maxInFlight, p.decisionsInFlight);
          maxWaiting = Math.max(maxWaiting, p.dueWaiting);
          maxHeld = Math.max(maxHeld, p.heldAhead);
          maxOutcomesWaiting = Math.max(maxOutcomesWaiting, p.outcomesWaiting);
        }
      };
      await step(30_000);

      // Bounded: the decisions under way (and so the store's queue) by the limit, the due tasks by their number.
      expect(maxInFlight).toBe(MAX_IN_FLIGHT);
      expect(limited.maxWaiting).toBeLessThanOrEqual(MAX_IN_FLIGHT);
      expect(maxWaiting).toBeGreaterThan(0);
      expect(maxWaiting).toBeLessThanOrEqual(TASKS);
      expect(maxHeld).toBeLessThanOrEqual(TASKS);
      expect(maxOutcomesWaiting).toBeLessThanOrEqual(node.pipeline().maxOutcomesWaiting);
      expect(node.pipeline().maxDecisionsInFlight).toBe(MAX_IN_FLIGHT);

      // The shortfall is explicit: ticks not fired are recorded as misfired because of the overload.
      const log = await limited.readAll();
      const misfired = log
        .filter((e) => e.type === 'TaskMisfired')
        .map((e) => e.data as { count: number; cause?: string; action: string });
      expect(misfired.length).toBeGreaterThan(0);
      expect(misfired.every((m) => m.cause === 'overload' && m.action === 'coalesced')).toBe(true);
      const fired = firedOf(log);
      const missed = misfired.reduce((n, m) => n + m.count, 0);
      // Every tick of the window is accounted for: fired, or recorded as missed.
      const ticks = new Set(fired.map((f) => `${f.taskId}@${f.scheduledAt}`));
      expect(ticks.size).toBe(fired.length);
      expect(fired.length + missed).toBeGreaterThan(TASKS * 25);
      expect(fired.length).toBeGreaterThan(2_500);
      // Logged, but not a line per task: a warning on the first miss, then at most one every 10 s.
      const warnings = lines.filter((l) => l.msg.startsWith('node overloaded'));
      expect(warnings.length).toBeGreaterThanOrEqual(2);
      expect(warnings.length).toBeLessThanOrEqual(4);
      expect(warnings.every((w) => (w.missedTicks ?? 0) > 0)).toBe(true);

      // The load drops (the disk keeps up again): within a few seconds every tick fires on time.
      limited.unlimit();
      await step(15_000, 20);
      const recent = firedOf(await limited.readAll()).filter((f) => Date.parse(f.scheduledAt) >= clock.now() - 3_000);
      expect(recent.length).toBeGreaterThan(TASKS * 2);
      const lateness = recent.map((f) => Date.parse(f.firedAt) - Date.parse(f.scheduledAt));
      expect(Math.max(...lateness)).toBeLessThanOrEqual(100);
      expect(node.pipeline().dueWaiting).toBe(0);
      expect(lines.some((l) => l.msg.startsWith('node no longer overloaded'))).toBe(true);
    },
  );
});
