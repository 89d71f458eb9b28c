import { describe, expect, it } from 'vitest';
import { FencedError } from '../../domain/errors/index.js';
import { decide, decideFolded, jitterOf, nextWakeAt, type Lease, type TaskCommand } from '../../domain/task/decide.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { fireIdOf } from '../../domain/task/fireId.js';
import { TaskSpec } from '../../domain/task/spec.js';
import { evolve, foldTask, type TaskState } from '../../domain/task/state.js';
import { LEASE, T0, advance, created, fireAt, given, iso, spec } from './support/taskFixtures.js';

/**
 * Edge cases of the task decider, found in review: jitter vs lateness, delayAfter restarts, one-shot
 * edits, fencing after release, buffered ticks, deleted tasks, huge durations, and randomised sequences
 * over every policy combination. Each `describe` names the area.
 */

const S = 1_000;

const ev = {
  paused: (at: number): TaskEvent => ({ type: 'TaskPaused', data: { v: 1, taskId: 't1', at: iso(at) } }),
  resumed: (at: number): TaskEvent => ({ type: 'TaskResumed', data: { v: 1, taskId: 't1', at: iso(at) } }),
  deleted: (at: number): TaskEvent => ({ type: 'TaskDeleted', data: { v: 1, taskId: 't1', at: iso(at) } }),
  restored: (at: number): TaskEvent => ({ type: 'TaskRestored', data: { v: 1, taskId: 't1', at: iso(at) } }),
  updated: (s: TaskSpec, at: number): TaskEvent => ({
    type: 'TaskUpdated',
    data: { v: 1, taskId: 't1', spec: s, at: iso(at) },
  }),
  released: (lease: Lease, at: number): TaskEvent => ({
    type: 'TaskReleased',
    data: { v: 1, taskId: 't1', node: lease.node, epoch: lease.epoch, reason: 'drain', at: iso(at) },
  }),
};

/** Every in-flight attempt succeeds at `at`. */
const succeedAll = (events: TaskEvent[], at: number): TaskEvent[] => {
  const s = foldTask('t1', events);
  return [
    ...events,
    ...s.inFlight
      .filter((f) => f.deadline !== null)
      .map((f): TaskEvent => ({
        type: 'TaskSucceeded',
        data: { v: 1, taskId: 't1', fireId: f.fireId, attempt: f.attempt, at: iso(at), durationMs: 1, details: [] },
      })),
  ];
};

/** Applies `decide(command)` to a history, returning the longer history. */
const step = (events: TaskEvent[], command: TaskCommand): TaskEvent[] => [
  ...events,
  ...decide(command, foldTask('t1', events)),
];

const fired = (events: TaskEvent[]) =>
  events.filter((e): e is Extract<TaskEvent, { type: 'TaskFired' }> => e.type === 'TaskFired');

/** Drives a history forward like the node does: Advance at every wake-up until `until`, answering nothing. */
const driveTo = (
  events: TaskEvent[],
  until: number,
  answer?: (state: TaskState, now: number) => TaskEvent[],
): TaskEvent[] => {
  let h = events;
  for (let i = 0; i < 10_000; i++) {
    const wake = nextWakeAt(foldTask('t1', h));
    if (wake === null || wake > until) return h;
    h = step(h, advance(wake));
    if (answer) h = [...h, ...answer(foldTask('t1', h), wake)];
  }
  throw new Error('did not settle: the wake-up never moved past `until`');
};

describe('jitter against misfire detection', () => {
  // every 1m with a 10s jitter: the first tick's own jitter is well above the 1s misfire threshold.
  const jittered = (misfire: object) => spec({ schedule: { every: '1m', jitter: '10s' }, misfire });

  it('precondition: the first tick of this task is jittered by more than the misfire threshold', () => {
    const state = foldTask('t1', [created(jittered({}))]);
    expect(jitterOf(state, T0 + 60 * S)).toBeGreaterThan(1_000);
  });

  it('a jittered tick handled at its jittered instant is on time: misfire skip fires it instead of dropping it', () => {
    const s = jittered({ policy: 'skip' });
    const wake = nextWakeAt(foldTask('t1', [created(s)])) as number;
    given([created(s)])
      .when(advance(wake))
      .then([
        { type: 'TaskAssigned' },
        { type: 'TaskFired', data: { scheduledAt: iso(T0 + 60 * S), firedAt: iso(wake), trigger: 'schedule' } },
      ]);
  });

  it('a jittered tick fired at its jittered instant is a schedule fire, not a catch-up (fire-once)', () => {
    const s = jittered({ policy: 'fire-once' });
    const wake = nextWakeAt(foldTask('t1', [created(s)])) as number;
    const events = decide(advance(wake), foldTask('t1', [created(s)]));
    expect(fired(events).map((e) => e.data.trigger)).toEqual(['schedule']);
  });

  it('a catch-up window shorter than the jitter does not drop on-time jittered ticks', () => {
    const s = jittered({ policy: 'fire-once', catchUpWindow: '2s' });
    const state = foldTask('t1', [created(s)]);
    expect(jitterOf(state, T0 + 60 * S)).toBeGreaterThan(2_000);
    const wake = nextWakeAt(state) as number;
    expect(fired(decide(advance(wake), state))).toHaveLength(1);
  });

  it('a jittered tick is never fired before its jittered instant, and exactly once after', () => {
    const s = spec({ schedule: { every: '1s', jitter: '900ms' }, overlap: 'allow', misfire: { threshold: '5s' } });
    let h: TaskEvent[] = [created(s)];
    for (let now = T0; now <= T0 + 20 * S; now += 50) h = step(h, advance(now));
    const fires = fired(h);
    const keys = fires.map((f) => f.data.scheduledAt);
    expect(new Set(keys).size).toBe(keys.length);
    const state = foldTask('t1', [created(s)]);
    for (const f of fires) {
      const tick = Date.parse(f.data.scheduledAt);
      expect(Date.parse(f.data.firedAt)).toBeGreaterThanOrEqual(tick + jitterOf(state, tick));
    }
    // Every tick up to 19 s is fired: none lost to the jitter.
    expect(keys.slice(0, 19)).toEqual(Array.from({ length: 19 }, (_, i) => iso(T0 + (i + 1) * S)));
  });
});

describe('delayAfter never stalls', () => {
  const delay = (over: object = {}) => spec({ schedule: { delayAfter: '10s' }, ...over });
  /** Created at T0, fired at T0+10s, succeeded at T0+11s: the next tick is due at T0+21s. */
  const idle = (over: object = {}) => succeedAll(fireAt([created(delay(over))], T0 + 10 * S), T0 + 11 * S);

  it('after a completion the next tick is the completion plus the delay', () => {
    expect(nextWakeAt(foldTask('t1', idle()))).toBe(T0 + 21 * S);
  });

  it('resuming after a pause that spanned the pending tick re-arms the task', () => {
    const h = [...idle(), ev.paused(T0 + 12 * S), ev.resumed(T0 + 30 * S)];
    const wake = nextWakeAt(foldTask('t1', h));
    expect(wake).not.toBeNull();
    expect(fired(driveTo(h, T0 + 60 * S))).toHaveLength(2);
  });

  it('restoring a deleted task re-arms it', () => {
    const h = [...idle(), ev.deleted(T0 + 12 * S), ev.restored(T0 + 30 * S)];
    expect(nextWakeAt(foldTask('t1', h))).not.toBeNull();
  });

  it('a tick dropped by misfire skip (node was down) does not end the task', () => {
    const h = step(idle({ misfire: { policy: 'skip' } }), advance(T0 + 100 * S));
    expect(h.at(-1)).toMatchObject({ type: 'TaskMisfired', data: { action: 'dropped' } });
    expect(nextWakeAt(foldTask('t1', h))).not.toBeNull();
  });

  it('a tick dropped by the catch-up window does not end the task', () => {
    const h = step(idle({ misfire: { catchUpWindow: '5s' } }), advance(T0 + 100 * S));
    expect(h.at(-1)).toMatchObject({ type: 'TaskMisfired', data: { action: 'dropped' } });
    expect(nextWakeAt(foldTask('t1', h))).not.toBeNull();
  });

  it('switching a task that ran long ago to delayAfter arms a tick after the update', () => {
    const every = succeedAll(fireAt([created(spec())], T0 + S), T0 + S + 100);
    const h = [...every, ev.updated(delay(), T0 + 60 * S)];
    expect(nextWakeAt(foldTask('t1', h))).toBe(T0 + 70 * S);
  });

  it('delayAfter counts from the final outcome of a retried fire, not from the first failure', () => {
    const s = delay({ retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } } });
    const fireId = fireIdOf('t1', T0 + 10 * S);
    let h = fireAt([created(s)], T0 + 10 * S);
    h = step(h, { type: 'RecordOutcome', outcome: { fireId, attempt: 1, status: 'failed', at: T0 + 11 * S } });
    expect(nextWakeAt(foldTask('t1', h))).toBe(T0 + 12 * S); // the retry, no tick while it waits
    h = step(h, advance(T0 + 12 * S));
    h = step(h, { type: 'RecordOutcome', outcome: { fireId, attempt: 2, status: 'succeeded', at: T0 + 13 * S } });
    expect(nextWakeAt(foldTask('t1', h))).toBe(T0 + 23 * S);
  });
});

describe('one-shot `at`', () => {
  const at = (over: object = {}) => spec({ schedule: { at: iso(T0 + 5 * S), ...over } });
  const done = () => succeedAll(fireAt([created(at())], T0 + 5 * S), T0 + 6 * S);

  it('a one-shot that has fired is not fired again when its schedule is edited without moving `at`', () => {
    const h = [...done(), ev.updated(at({ jitter: '1s' }), T0 + 10 * S)];
    expect(nextWakeAt(foldTask('t1', h))).toBeNull();
    given(h)
      .when(advance(T0 + 20 * S))
      .thenNothingHappened();
  });

  it('an update to a one-shot at a tick the task already fired does not fire that tick again', () => {
    const every = succeedAll(fireAt([created(spec())], T0 + S), T0 + S + 100);
    const h = [...every, ev.updated(spec({ schedule: { at: iso(T0 + S) } }), T0 + 60 * S)];
    const again = decide(advance(T0 + 60 * S), foldTask('t1', h));
    expect(fired(again).map((f) => f.data.fireId)).not.toContain(fireIdOf('t1', T0 + S));
  });

  it('a one-shot created in the past is dropped by a catch-up window, and never woken again', () => {
    const past = spec({ schedule: { at: iso(T0 - 60 * S) }, misfire: { catchUpWindow: '10s' } });
    const h = step([created(past)], advance(T0 + 1));
    expect(h.slice(1)).toMatchObject([
      { type: 'TaskAssigned' },
      { type: 'TaskMisfired', data: { action: 'dropped', count: 1 } },
    ]);
    expect(nextWakeAt(foldTask('t1', h))).toBeNull();
  });

  it('a one-shot whose moment passes while paused is not fired on resume', () => {
    const h = [created(at()), ev.paused(T0 + S), ev.resumed(T0 + 10 * S)];
    expect(nextWakeAt(foldTask('t1', h))).toBeNull();
  });
});

describe('fencing', () => {
  const n1: Lease = { node: 'n1', epoch: 5 };
  const n2: Lease = { node: 'n2', epoch: 9 };

  it('after the newest owner releases the task, an older epoch is still fenced (epochs never go backwards)', () => {
    let h = fireAt([created()], T0 + S, n1);
    h = succeedAll(h, T0 + S + 10);
    h = step(h, advance(T0 + 2 * S, n2));
    h = succeedAll(h, T0 + 2 * S + 10);
    h = [...h, ev.released(n2, T0 + 2 * S + 20)];
    given(h)
      .when(advance(T0 + 3 * S, n1))
      .thenThrows(FencedError);
  });

  it('a stale lease is fenced for manual triggers and for timeouts, not only for ticks', () => {
    let h = fireAt([created(spec({ timeout: '500ms' }))], T0 + S, n2);
    given(h)
      .when({ type: 'TriggerTask', now: T0 + S + 100, lease: n1 })
      .thenThrows(FencedError);
    h = [...h, ev.paused(T0 + S + 100)];
    given(h)
      .when(advance(T0 + 3 * S, n1))
      .thenThrows(FencedError);
  });

  it('the claim is recorded once per epoch, and only with a decision', () => {
    let h = fireAt([created()], T0 + S, n1);
    h = succeedAll(h, T0 + S + 10);
    h = step(h, advance(T0 + 2 * S, n1));
    expect(h.filter((e) => e.type === 'TaskAssigned' || e.type === 'TaskReassigned')).toHaveLength(1);
    given(h)
      .when(advance(T0 + 2 * S + 1, n2))
      .thenNothingHappened();
  });
});

describe('overlap: buffered ticks', () => {
  /** every 10s; the fire of 10s runs until 35s, so the ticks of 20s and 30s come while it runs. */
  const longRun = (over: object) => fireAt([created(spec({ schedule: { every: '10s' }, ...over }))], T0 + 10 * S);

  it('buffer-all with the default misfire policy fires every buffered tick, one per completion', () => {
    let h = longRun({ overlap: 'buffer-all' });
    h = driveTo(h, T0 + 34 * S);
    h = succeedAll(h, T0 + 35 * S);
    h = step(h, advance(T0 + 35 * S));
    h = succeedAll(h, T0 + 36 * S);
    h = step(h, advance(T0 + 36 * S));
    expect(fired(h).map((f) => f.data.scheduledAt)).toEqual([iso(T0 + 10 * S), iso(T0 + 20 * S), iso(T0 + 30 * S)]);
    expect(h.some((e) => e.type === 'TaskMisfired')).toBe(false);
  });

  it('buffer-one with misfire skip fires the buffered tick on completion, even when the run outlasted the threshold', () => {
    let h = longRun({ overlap: 'buffer-one', misfire: { policy: 'skip' } });
    h = driveTo(h, T0 + 34 * S);
    expect(h.at(-1)).toMatchObject({
      type: 'TaskSkipped',
      data: { until: iso(T0 + 30 * S - 1), policy: 'buffer-one' },
    });
    h = succeedAll(h, T0 + 35 * S);
    const events = decide(advance(T0 + 35 * S), foldTask('t1', h));
    expect(fired(events).map((f) => f.data.scheduledAt)).toEqual([iso(T0 + 30 * S)]);
  });

  it('buffer-one fires the buffered tick at completion (fire-once), and nothing is lost or doubled', () => {
    let h = longRun({ overlap: 'buffer-one' });
    h = driveTo(h, T0 + 34 * S);
    h = succeedAll(h, T0 + 35 * S);
    h = step(h, advance(T0 + 35 * S));
    expect(fired(h).map((f) => f.data.scheduledAt)).toEqual([iso(T0 + 10 * S), iso(T0 + 30 * S)]);
    // The 20s tick is accounted for as skipped (displaced), exactly once.
    const skipped = h.filter((e) => e.type === 'TaskSkipped');
    expect(skipped.reduce((n, e) => n + ((e.data as { count: number | null }).count ?? 0), 0)).toBe(1);
    // While the 30s fire runs, the 40s tick would only be buffered: the next wake-up is the 50s tick that displaces it.
    expect(nextWakeAt(foldTask('t1', h))).toBe(T0 + 50 * S);
    expect(nextWakeAt(foldTask('t1', succeedAll(h, T0 + 36 * S)))).toBe(T0 + 40 * S);
  });

  it('buffer-all (fire-all) never fires while a run lasts, and wakes only for the deadline', () => {
    const h = longRun({ overlap: 'buffer-all', misfire: { policy: 'fire-all' }, timeout: '30s' });
    expect(nextWakeAt(foldTask('t1', h))).toBe(T0 + 40 * S);
    given(h)
      .when(advance(T0 + 39 * S))
      .thenNothingHappened();
  });
});

describe('deleted and paused tasks with fires in flight', () => {
  const retrying = spec({ retry: { maxAttempts: 3, backoff: { initial: '1s', jitter: 0 } }, timeout: '5s' });

  it('a deleted task schedules no retry: an attempt timing out after the delete fails for good', () => {
    const h = [...fireAt([created(retrying)], T0 + S), ev.deleted(T0 + 2 * S)];
    const events = decide(advance(T0 + 6 * S), foldTask('t1', h));
    expect(events.find((e) => e.type === 'TaskFailed')).toBeDefined();
    expect(events.find((e) => e.type === 'TaskFailed')).not.toHaveProperty('data.willRetryAt');
    expect(foldTask('t1', [...h, ...events]).inFlight).toEqual([]);
  });

  it('a deleted task schedules no retry: a failure reported after the delete is final', () => {
    const h = [...fireAt([created(retrying)], T0 + S), ev.deleted(T0 + 2 * S)];
    const events = decide(
      {
        type: 'RecordOutcome',
        outcome: { fireId: fireIdOf('t1', T0 + S), attempt: 1, status: 'failed', at: T0 + 3 * S },
      },
      foldTask('t1', h),
    );
    expect(events).toHaveLength(1);
    expect(events[0]).not.toHaveProperty('data.willRetryAt');
  });

  it('a paused task does not retry while paused (no wake-up), and a success after the pause is recorded', () => {
    let h = [...fireAt([created(retrying)], T0 + S), ev.paused(T0 + 2 * S)];
    const fireId = fireIdOf('t1', T0 + S);
    h = step(h, { type: 'RecordOutcome', outcome: { fireId, attempt: 1, status: 'failed', at: T0 + 3 * S } });
    expect(nextWakeAt(foldTask('t1', h))).toBeNull();
    given(h)
      .when(advance(T0 + 10 * S))
      .thenNothingHappened();
  });

  it('a deleted task does not fire its ticks, but its in-flight attempt still times out', () => {
    const h = [...fireAt([created(spec({ timeout: '5s' }))], T0 + S), ev.deleted(T0 + 2 * S)];
    expect(nextWakeAt(foldTask('t1', h))).toBe(T0 + 6 * S);
    given(h)
      .when(advance(T0 + 6 * S))
      .then([{ type: 'TaskFailed', data: { reason: 'timeout' } }]);
    expect(nextWakeAt(foldTask('t1', [...h, ...decide(advance(T0 + 6 * S), foldTask('t1', h))]))).toBeNull();
  });
});

describe('timeouts against late outcomes', () => {
  const retrying = spec({ retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } }, timeout: '5s' });
  const fireId = fireIdOf('t1', T0 + S);

  it('once an attempt timed out, its late success is ignored and the retry goes ahead', () => {
    let h = step(fireAt([created(retrying)], T0 + S), advance(T0 + 6 * S));
    given(h)
      .when({ type: 'RecordOutcome', outcome: { fireId, attempt: 1, status: 'succeeded', at: T0 + 6 * S + 10 } })
      .thenNothingHappened();
    h = step(h, advance(T0 + 7 * S));
    expect(fired(h).map((f) => [f.data.attempt, f.data.trigger])).toEqual([
      [1, 'schedule'],
      [2, 'retry'],
    ]);
  });

  it('after the final timeout a late outcome changes nothing and the fire is gone', () => {
    let h = step(fireAt([created(retrying)], T0 + S), advance(T0 + 6 * S));
    h = step(h, advance(T0 + 7 * S));
    h = step(h, advance(T0 + 12 * S));
    expect(foldTask('t1', h).inFlight.some((f) => f.fireId === fireId)).toBe(false);
    given(h)
      .when({ type: 'RecordOutcome', outcome: { fireId, attempt: 2, status: 'succeeded', at: T0 + 13 * S } })
      .thenNothingHappened();
  });
});

describe('cancel-previous', () => {
  const s = spec({ overlap: 'cancel-previous', retry: { maxAttempts: 3, backoff: { initial: '1s', jitter: 0 } } });

  it('a retry due together with the next tick is not fired only to be cancelled in the same decision', () => {
    let h = fireAt([created(s)], T0 + S);
    h = step(h, {
      type: 'RecordOutcome',
      outcome: { fireId: fireIdOf('t1', T0 + S), attempt: 1, status: 'failed', at: T0 + S },
    });
    const events = decide(advance(T0 + 2 * S), foldTask('t1', h));
    const cancelled = new Set(
      events.filter((e) => e.type === 'TaskFailed').map((e) => `${e.data.fireId}#${e.data.attempt}`),
    );
    const firedThenCancelled = fired(events).filter((f) => cancelled.has(`${f.data.fireId}#${f.data.attempt}`));
    expect(firedThenCancelled).toEqual([]);
  });

  it('cancel-previous abandons a fire waiting for its retry (final, no retry), and fires the new tick', () => {
    let h = fireAt([created(s)], T0 + S);
    h = step(h, {
      type: 'RecordOutcome',
      outcome: { fireId: fireIdOf('t1', T0 + S), attempt: 1, status: 'failed', at: T0 + S + 100 },
    });
    // The retry would come at 2.1s; the 2s tick comes first.
    h = step(h, advance(T0 + 2 * S));
    const state = foldTask('t1', h);
    expect(state.inFlight.map((f) => f.fireId)).toEqual([fireIdOf('t1', T0 + 2 * S)]);
    expect(h.at(-2)).toMatchObject({ type: 'TaskFailed', data: { reason: 'cancelled' } });
    expect(h.at(-2)).not.toHaveProperty('data.willRetryAt');
    given(h)
      .when(advance(T0 + 2 * S + 100))
      .thenNothingHappened();
  });
});

describe('maxRuns with catch-up', () => {
  it('fire-all after downtime fires at most the runs left, then the task is finished', () => {
    const s = spec({ schedule: { every: '1s', maxRuns: 3 }, overlap: 'allow', misfire: { policy: 'fire-all' } });
    let h = fireAt([created(s)], T0 + S);
    h = step(h, advance(T0 + 10 * S));
    expect(fired(h)).toHaveLength(3);
    h = succeedAll(h, T0 + 10 * S);
    expect(nextWakeAt(foldTask('t1', h))).toBeNull();
    given(h)
      .when(advance(T0 + 20 * S))
      .thenNothingHappened();
  });

  it('skipped and coalesced ticks do not count as runs', () => {
    const s = spec({ schedule: { every: '1s', maxRuns: 2 } });
    let h = fireAt([created(s)], T0 + S);
    h = step(h, advance(T0 + 2 * S)); // skipped (overlap)
    h = succeedAll(h, T0 + 2 * S + 10);
    h = step(h, advance(T0 + 9 * S)); // coalesced 3..8, fires 9
    expect(fired(h).map((f) => f.data.scheduledAt)).toEqual([iso(T0 + S), iso(T0 + 9 * S)]);
    expect(foldTask('t1', h).runs).toBe(2);
  });
});

describe('spec limits', () => {
  it('a timeout the spec accepts can be decided (no RangeError on every Advance)', () => {
    const parsed = TaskSpec.safeParse({
      id: 't1',
      schedule: { every: '1s' },
      target: { topic: 'jobs' },
      timeout: '15000000w',
    });
    // Either the validator refuses the duration, or the decider can fire the task.
    const decideFire = () => decide(advance(T0 + S), foldTask('t1', [created(parsed.data as TaskSpec)]));
    expect(parsed.success ? decideFire : () => undefined).not.toThrow();
  });
});

describe('no busy loop, no stall (sequences)', () => {
  // A small deterministic generator: the same sequences on every run.
  const prng = (seed: number) => () => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fff_ffff;
    return seed / 0x8000_0000;
  };

  it('after any Advance the next wake-up is in the future (or, if due now, the next Advance makes progress), and no attempt fires twice', () => {
    const overlaps = ['skip', 'buffer-one', 'buffer-all', 'allow', 'cancel-previous'] as const;
    const policies = ['fire-once', 'fire-all', 'skip'] as const;
    const schedules = [
      { every: '1s' },
      { every: '3s', jitter: '2s' },
      { cron: '*/2 * * * * *' },
      { every: '2s', maxRuns: 4 },
    ];
    const rnd = prng(42);
    for (const overlap of overlaps)
      for (const policy of policies)
        for (const schedule of schedules) {
          const s = spec({
            schedule,
            overlap,
            misfire: { policy, maxCatchUp: 3 },
            retry: { maxAttempts: 2, backoff: { initial: '1s' } },
            timeout: '2500ms',
          });
          let state = foldTask('t1', [created(s)]);
          let now = T0;
          const attempts = new Set<string>();
          for (let i = 0; i < 80; i++) {
            const r = rnd();
            let command: TaskCommand;
            if (r < 0.6) {
              const wake = nextWakeAt(state);
              now = wake !== null && r < 0.5 ? Math.max(now, wake) : now + Math.floor(rnd() * 5_000);
              command = advance(now);
            } else if (state.inFlight.length > 0) {
              const f = state.inFlight[Math.floor(rnd() * state.inFlight.length)] as TaskState['inFlight'][number];
              now += Math.floor(rnd() * 1_000);
              command = {
                type: 'RecordOutcome',
                outcome: {
                  fireId: f.fireId,
                  attempt: f.attempt,
                  status: rnd() < 0.5 ? 'succeeded' : 'failed',
                  at: now,
                },
              };
            } else continue;
            const events = decide(command, state);
            // The node takes the state a decision folded to: the same as folding its events.
            const decided = decideFolded(command, state);
            expect(decided.events).toEqual(events);
            expect(decided.state).toEqual(events.reduce(evolve, state));
            for (const e of events) {
              if (e.type === 'TaskFired') {
                const key = `${e.data.fireId}#${e.data.attempt}`;
                expect(attempts.has(key), `${overlap}/${policy}/${JSON.stringify(schedule)}: ${key} fired twice`).toBe(
                  false,
                );
                attempts.add(key);
              }
              state = evolve(state, e);
            }
            if (command.type !== 'Advance') continue;
            const wake = nextWakeAt(state);
            if (wake !== null && wake <= now) {
              // Due again at once: acceptable only if the next decision makes progress (no hot loop).
              expect(
                decide(advance(now), state).length,
                `${overlap}/${policy}/${JSON.stringify(schedule)} hot loop at ${now - T0}`,
              ).toBeGreaterThan(0);
            }
            // An infinite schedule that is active always has a wake-up (else the task stalls).
            if (!('maxRuns' in schedule))
              expect(wake, `${overlap}/${policy}/${JSON.stringify(schedule)} stalled at ${now - T0}`).not.toBeNull();
          }
        }
  });

  it('with no pause or update, every tick up to the cursor is fired, skipped or misfired exactly once', () => {
    const rnd = prng(7);
    for (const overlap of ['skip', 'buffer-one', 'buffer-all', 'allow', 'cancel-previous'] as const)
      for (const policy of ['fire-once', 'fire-all', 'skip'] as const) {
        const s = spec({
          schedule: { every: '1s', jitter: '400ms' },
          overlap,
          misfire: { policy, maxCatchUp: 2, catchUpWindow: '6s' },
          timeout: '3s',
        });
        const log: TaskEvent[] = [created(s)];
        let state = foldTask('t1', log);
        let now = T0;
        for (let i = 0; i < 60; i++) {
          now += Math.floor(rnd() * (rnd() < 0.1 ? 20_000 : 1_500));
          const f = state.inFlight[0];
          const command: TaskCommand =
            f && f.deadline !== null && rnd() < 0.4
              ? {
                  type: 'RecordOutcome',
                  outcome: { fireId: f.fireId, attempt: f.attempt, status: 'succeeded', at: now },
                }
              : advance(now);
          for (const e of decide(command, state)) {
            log.push(e);
            state = evolve(state, e);
          }
        }
        let accounted = 0;
        for (const e of log) {
          if (e.type === 'TaskFired' && e.data.attempt === 1) accounted++;
          if (e.type === 'TaskSkipped' || e.type === 'TaskMisfired') accounted += e.data.count ?? 0;
        }
        expect(accounted, `${overlap}/${policy}`).toBe(Math.floor((state.cursor - T0) / S));
      }
  });
});

describe('state folding', () => {
  it('the cursor never moves back on pause/resume/delete/restore', () => {
    let h = fireAt([created()], T0 + 5 * S);
    const c = foldTask('t1', h).cursor;
    h = [...h, ev.paused(T0 + 2 * S), ev.resumed(T0 + 3 * S), ev.deleted(T0 + 3 * S), ev.restored(T0 + 4 * S)];
    expect(foldTask('t1', h).cursor).toBe(c);
  });

  it('a retry attempt neither moves the cursor nor counts as a run', () => {
    const s = spec({ retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } } });
    let h = fireAt([created(s)], T0 + S);
    h = step(h, {
      type: 'RecordOutcome',
      outcome: { fireId: fireIdOf('t1', T0 + S), attempt: 1, status: 'failed', at: T0 + S + 100 },
    });
    h = step(h, advance(T0 + 2 * S + 100));
    const state = foldTask('t1', h);
    expect(fired(h).at(-1)).toMatchObject({ data: { trigger: 'retry', attempt: 2 } });
    expect(state.runs).toBe(1);
    expect(state.inFlight[0]).toMatchObject({ trigger: 'schedule', attempt: 2 });
  });

  it('a manual trigger of a task whose lease is unrecorded claims it first', () => {
    given([created()])
      .when({ type: 'TriggerTask', now: T0 + 10, lease: LEASE })
      .then([{ type: 'TaskAssigned' }, { type: 'TaskFired', data: { trigger: 'manual' } }]);
  });
});
