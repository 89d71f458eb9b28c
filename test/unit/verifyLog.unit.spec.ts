import { describe, expect, it } from 'vitest';
import { decide } from '../../domain/task/decide.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { fireIdOf } from '../../domain/task/fireId.js';
import { foldTask } from '../../domain/task/state.js';
import { LogVerifier, ViolationKind } from '../../domain/verify/verifyLog.js';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import { verifyStore } from '../../src/verify/verifyStore.js';
import { run, specOf, startNode } from './support/nodeHarness.js';
import { LEASE, T0, advance, created, iso, spec } from './support/taskFixtures.js';

const S = 1_000;

const verify = (events: TaskEvent[]) => {
  const verifier = new LogVerifier();
  events.forEach((e, i) => verifier.add('t1', i, e));
  return verifier.report();
};

const fired = (tick: number, epoch = LEASE.epoch, node = LEASE.node): TaskEvent => ({
  type: 'TaskFired',
  data: {
    v: 1,
    taskId: 't1',
    fireId: fireIdOf('t1', tick),
    scheduledAt: iso(tick),
    firedAt: iso(tick),
    node,
    epoch,
    attempt: 1,
    trigger: 'schedule',
    deadline: iso(tick + 60 * S),
  },
});
const assigned = (epoch: number, node = LEASE.node): TaskEvent => ({
  type: 'TaskAssigned',
  data: { v: 1, taskId: 't1', node, epoch, reason: 'start', at: iso(T0) },
});
const succeeded = (tick: number): TaskEvent => ({
  type: 'TaskSucceeded',
  data: {
    v: 1,
    taskId: 't1',
    fireId: fireIdOf('t1', tick),
    attempt: 1,
    at: iso(tick + 10),
    durationMs: 10,
    details: [],
  },
});

describe('LogVerifier on logs the decider writes', () => {
  it('finds nothing wrong in a life of fires, misfires, skips, pauses and retries', () => {
    const events: TaskEvent[] = [
      created(spec({ misfire: { policy: 'fire-once', threshold: '200ms' }, retry: { maxAttempts: 2 } })),
    ];
    const step = (command: Parameters<typeof decide>[0]) => events.push(...decide(command, foldTask('t1', events)));
    step(advance(T0 + S));
    step(advance(T0 + 2 * S)); // skipped: the first fire still runs
    step({
      type: 'RecordOutcome',
      outcome: { fireId: fireIdOf('t1', T0 + S), attempt: 1, status: 'succeeded', at: T0 + 2_100 },
    });
    step(advance(T0 + 9 * S + 500)); // a gap: ticks 3..8 coalesced, 9 fired late
    step({
      type: 'RecordOutcome',
      outcome: { fireId: fireIdOf('t1', T0 + 9 * S), attempt: 1, status: 'succeeded', at: T0 + 9_550 },
    });
    step({ type: 'PauseTask', now: T0 + 9_600 });
    step({ type: 'ResumeTask', now: T0 + 20 * S });
    step(advance(T0 + 21 * S));
    const report = verify(events);
    expect(report.violations).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.fires).toBe(3);
  });
});

describe('LogVerifier finds each kind of violation', () => {
  it('a tick fired twice', () => {
    const report = verify([created(), assigned(7), fired(T0 + S), succeeded(T0 + S), fired(T0 + S)]);
    expect(report.counts[ViolationKind.duplicateFire]).toBe(1);
    expect(report.ok).toBe(false);
  });

  it('ticks nobody handled before a later one was fired', () => {
    const report = verify([created(), assigned(7), fired(T0 + 5 * S)]);
    expect(report.violations).toMatchObject([
      { kind: ViolationKind.lostTicks, message: expect.stringContaining('4 tick(s)') },
    ]);
  });

  it('an epoch going backwards, and a fire by an older epoch', () => {
    const report = verify([
      created(),
      assigned(9, 'n2'),
      fired(T0 + S, 9, 'n2'),
      assigned(5, 'n1'),
      fired(T0 + 2 * S, 5, 'n1'),
    ]);
    expect(report.counts[ViolationKind.epochBackwards]).toBe(1);
    expect(report.counts[ViolationKind.staleEpochFire]).toBe(1);
  });

  it('a fire with no outcome whose owner released the task', () => {
    const released: TaskEvent = {
      type: 'TaskReleased',
      data: { v: 1, taskId: 't1', node: 'n1', epoch: 7, reason: 'drain', at: iso(T0 + 2 * S) },
    };
    const report = verify([created(), assigned(7), fired(T0 + S), released]);
    expect(report.counts[ViolationKind.orphanFire]).toBe(1);
    expect(report.inFlight).toBe(1);
  });

  it('an event that is not a task event', () => {
    const verifier = new LogVerifier();
    verifier.addUndecodable('t1', 3, 'kairos-task-t1@3 (TaskFired): data.fireId: invalid');
    expect(verifier.report().counts[ViolationKind.undecodable]).toBe(1);
  });
});

describe('LogVerifier on truncated streams (retention)', () => {
  /** A life of ten fires with a capture after the seventh answer, as `decide` writes it. */
  const captured = () => {
    const events: TaskEvent[] = [created(spec({ overlap: 'allow' }))];
    const step = (command: Parameters<typeof decide>[0]) => events.push(...decide(command, foldTask('t1', events)));
    let capture = -1;
    for (let i = 1; i <= 10; i++) {
      step(advance(T0 + i * S));
      step({
        type: 'RecordOutcome',
        outcome: { fireId: fireIdOf('t1', T0 + i * S), attempt: 1, status: 'succeeded', at: T0 + i * S + 5 },
      });
      if (i === 7) {
        capture = events.length;
        step({ type: 'CaptureState', now: T0 + i * S + 6, history: { definitions: [], ownership: [] } });
      }
    }
    return { events, capture };
  };
  const verifyFrom = (events: TaskEvent[], revisions: number[]) => {
    const verifier = new LogVerifier();
    for (const r of revisions) verifier.add('t1', r, events[r] as TaskEvent);
    return verifier.report();
  };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  it('finds a whole stream with a capture clean, and one that starts at any revision up to the capture', () => {
    const { events, capture } = captured();
    expect(verifyFrom(events, range(0, events.length)).violations).toEqual([]);
    for (let start = 1; start <= capture; start++) {
      const report = verifyFrom(events, range(start, events.length));
      expect(report.violations).toEqual([]);
      expect(report.inFlight).toBe(0);
    }
  });

  it('takes the scattered truncated events $all may still show on EventStoreDB', () => {
    const { events, capture } = captured();
    const report = verifyFrom(events, [2, 3, 9, 10, 11, ...range(capture, events.length)]);
    expect(report.violations).toEqual([]);
  });

  it('still finds a tick fired twice, and lost ticks after the capture', () => {
    const { events, capture } = captured();
    const twice = [...events, fired(T0 + 10 * S, 100)];
    expect(verifyFrom(twice, range(capture - 2, twice.length)).counts[ViolationKind.duplicateFire]).toBe(1);
    // Fired again after the cut took its first fire away: the captured cursor still knows the tick was handled.
    const again = [...events, fired(T0 + 3 * S, 100)];
    expect(verifyFrom(again, range(capture, again.length)).violations).toMatchObject([
      { kind: ViolationKind.duplicateFire, revision: again.length - 1 },
    ]);
    const lost = [...events, fired(T0 + 14 * S, 100)];
    expect(verifyFrom(lost, range(capture, lost.length)).counts[ViolationKind.lostTicks]).toBe(1);
  });

  it('reports a capture that does not record the state its stream folds to, or an older epoch floor', () => {
    const { events, capture } = captured();
    const snapshot = events[capture] as Extract<TaskEvent, { type: 'TaskStateCaptured' }>;
    const wrong: TaskEvent = {
      ...snapshot,
      data: { ...snapshot.data, state: { ...snapshot.data.state, runs: snapshot.data.state.runs - 1 } },
    };
    const altered = events.map((e, i) => (i === capture ? wrong : e));
    const report = verifyFrom(altered, range(0, altered.length));
    expect(report.violations).toMatchObject([{ kind: ViolationKind.captureMismatch, revision: capture }]);
    // From a truncation the state is unknown, but the capture may not fall below epochs seen since.
    const older: TaskEvent = {
      ...snapshot,
      data: { ...snapshot.data, state: { ...snapshot.data.state, epochFloor: 1 } },
    };
    const floor = events.map((e, i) => (i === capture ? older : e));
    expect(verifyFrom(floor, range(capture - 4, floor.length)).counts[ViolationKind.epochBackwards]).toBe(1);
  });
});

describe('verifyStore on logs a node wrote', () => {
  it('is clean after restarts, catch-up and a split brain on one log', async () => {
    const clock = new SimulatedClock(T0);
    const store = new InMemoryEventStore({ now: () => clock.now() });
    const a = await startNode({ store, clock, nodeId: 'a', epoch: 1, autoSucceed: true });
    for (let i = 0; i < 5; i++) {
      await a.node.createTask(
        specOf({ id: `t${i}`, misfire: { policy: i % 2 ? 'fire-all' : 'fire-once' }, overlap: 'allow' }),
        { actor: 'user:test' },
      );
    }
    await run(clock, 3_000);
    await a.node.stop();
    clock.increment(7_000);
    const b = await startNode({ store, clock, nodeId: 'b', epoch: 2, autoSucceed: true });
    const c = await startNode({ store, clock, nodeId: 'c', epoch: 3, autoSucceed: true });
    await run(clock, 5_000);
    await b.node.stop();
    await c.node.stop();
    const report = await verifyStore(store);
    expect(report.violations).toEqual([]);
    expect(report.tasks).toBe(5);
    expect(report.fires).toBeGreaterThan(5 * 10);
  });
});
