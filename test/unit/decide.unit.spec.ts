import { describe, expect, it } from 'vitest';
import { AlreadyExistsError, FencedError, IllegalStateError, NotFoundError } from '../../domain/errors/index.js';
import { decide, nextWakeAt, retryDelay } from '../../domain/task/decide.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { fireIdOf } from '../../domain/task/fireId.js';
import { foldTask } from '../../domain/task/state.js';
import { LEASE, T0, advance, created, fireAt, given, iso, spec } from './support/taskFixtures.js';

const S = 1_000;

describe('task definition commands', () => {
  it('creates a task once; a second create of the same id is refused', () => {
    given([])
      .when({ type: 'CreateTask', spec: spec(), now: T0 })
      .then([{ type: 'TaskCreated', data: { taskId: 't1', at: iso(T0) } }]);
    given([created()]).when({ type: 'CreateTask', spec: spec(), now: T0 }).thenThrows(AlreadyExistsError);
  });

  it('refuses to re-create a deleted task and says to restore it', () => {
    const deleted: TaskEvent = { type: 'TaskDeleted', data: { v: 1, taskId: 't1', at: iso(T0 + S) } };
    given([created(), deleted])
      .when({ type: 'CreateTask', spec: spec(), now: T0 + 2 * S })
      .thenThrows(AlreadyExistsError, /restore it/);
  });

  it('updates only when the spec changes (idempotent apply)', () => {
    given([created()])
      .when({ type: 'UpdateTask', spec: spec(), now: T0 + S })
      .thenNothingHappened();
    given([created()])
      .when({ type: 'UpdateTask', spec: spec({ schedule: { every: '5s' } }), now: T0 + S })
      .then([{ type: 'TaskUpdated', data: { spec: { schedule: { every: 5_000 } } } }]);
  });

  it('commands on an unknown task are NotFound; on a deleted one IllegalState naming the state', () => {
    given([]).when({ type: 'PauseTask', now: T0 }).thenThrows(NotFoundError);
    given([]).when(advance(T0)).thenThrows(NotFoundError);
    const deleted: TaskEvent = { type: 'TaskDeleted', data: { v: 1, taskId: 't1', at: iso(T0) } };
    given([created(), deleted])
      .when({ type: 'UpdateTask', spec: spec({ schedule: { every: '2s' } }), now: T0 })
      .thenThrows(IllegalStateError, /deleted/);
    given([created(), deleted])
      .when({ type: 'TriggerTask', now: T0, lease: LEASE })
      .thenThrows(IllegalStateError, /deleted/);
  });

  it('pause, resume, delete and restore are idempotent; restore returns to the status before delete', () => {
    const paused: TaskEvent = { type: 'TaskPaused', data: { v: 1, taskId: 't1', at: iso(T0 + S) } };
    given([created(), paused]).when({ type: 'PauseTask', now: T0 }).thenNothingHappened();
    given([created()]).when({ type: 'ResumeTask', now: T0 }).thenNothingHappened();
    given([created()]).when({ type: 'RestoreTask', now: T0 }).thenNothingHappened();
    const deleted: TaskEvent = { type: 'TaskDeleted', data: { v: 1, taskId: 't1', at: iso(T0 + 2 * S) } };
    given([created(), paused, deleted]).when({ type: 'DeleteTask', now: T0 }).thenNothingHappened();
    const restored: TaskEvent = { type: 'TaskRestored', data: { v: 1, taskId: 't1', at: iso(T0 + 3 * S) } };
    expect(foldTask('t1', [created(), paused, deleted, restored]).status).toBe('paused');
    expect(foldTask('t1', [created(), deleted, restored]).status).toBe('active');
  });

  it('rejects a spec whose id differs from the task', () => {
    given([])
      .when({ type: 'CreateTask', spec: spec({ id: 'other' }), now: T0 })
      .thenThrows(Error, /must be 't1'/);
  });
});

describe('firing and fencing', () => {
  it('claims ownership in the same append as the first fire', () => {
    given([created()])
      .when(advance(T0 + S))
      .then([
        { type: 'TaskAssigned', data: { node: 'n1', epoch: 7 } },
        {
          type: 'TaskFired',
          data: {
            fireId: fireIdOf('t1', T0 + S),
            scheduledAt: iso(T0 + S),
            firedAt: iso(T0 + S),
            epoch: 7,
            attempt: 1,
            trigger: 'schedule',
          },
        },
      ]);
  });

  it('does nothing before the tick, and claims nothing when nothing is due', () => {
    given([created()])
      .when(advance(T0 + S - 1))
      .thenNothingHappened();
  });

  it('a newer lease records a reassignment; an older one is fenced off', () => {
    const history = fireAt([created()], T0 + S);
    const done: TaskEvent = {
      type: 'TaskSucceeded',
      data: {
        v: 1,
        taskId: 't1',
        fireId: fireIdOf('t1', T0 + S),
        attempt: 1,
        at: iso(T0 + S + 10),
        durationMs: 10,
        details: [],
      },
    };
    given([...history, done])
      .when(advance(T0 + 2 * S, { node: 'n2', epoch: 9, reason: 'node-lost' }))
      .then([
        {
          type: 'TaskReassigned',
          data: { node: 'n2', epoch: 9, previousNode: 'n1', previousEpoch: 7, reason: 'node-lost' },
        },
        { type: 'TaskFired', data: { epoch: 9 } },
      ]);
    given([...history, done])
      .when(advance(T0 + 2 * S, { node: 'n0', epoch: 3 }))
      .thenThrows(FencedError);
  });

  it('the fire id is derived from (task, tick): the same on every node', () => {
    const a = decide(advance(T0 + S, { node: 'a', epoch: 1 }), foldTask('t1', [created()]));
    const b = decide(advance(T0 + S, { node: 'b', epoch: 2 }), foldTask('t1', [created()]));
    expect(a[1]).toMatchObject({ data: { fireId: (b[1] as { data: { fireId: string } }).data.fireId } });
  });

  it('a manual trigger fires at once, even while paused, and does not move the schedule', () => {
    const paused: TaskEvent = { type: 'TaskPaused', data: { v: 1, taskId: 't1', at: iso(T0) } };
    const events = given([created(), paused])
      .when({ type: 'TriggerTask', now: T0 + 500, lease: LEASE })
      .then([{ type: 'TaskAssigned' }, { type: 'TaskFired', data: { trigger: 'manual', scheduledAt: iso(T0 + 500) } }]);
    const state = foldTask('t1', [created(), paused, ...events]);
    expect(state.cursor).toBe(T0);
    expect(state.runs).toBe(0);
  });
});

const done = (events: TaskEvent[], at: number): TaskEvent[] => {
  const s = foldTask('t1', events);
  const out = [...events];
  for (const f of s.inFlight)
    out.push({
      type: 'TaskSucceeded',
      data: { v: 1, taskId: 't1', fireId: f.fireId, attempt: f.attempt, at: iso(at), durationMs: 1, details: [] },
    });
  return out;
};

describe('misfire policies after downtime', () => {
  const down = (policy: 'fire-all' | 'fire-once' | 'skip', extra: object = {}) =>
    given([created(spec({ misfire: { policy, ...extra }, overlap: 'allow' }))]);

  it('fire-all fires every missed tick, marking late ones as catch-up', () => {
    const events = down('fire-all')
      .when(advance(T0 + 10 * S + 200))
      .events();
    const fired = events.filter((e) => e.type === 'TaskFired');
    expect(fired.map((e) => e.data.scheduledAt)).toEqual(Array.from({ length: 10 }, (_, i) => iso(T0 + (i + 1) * S)));
    expect(fired.map((e) => e.data.trigger)).toEqual([...Array(9).fill('catch-up'), 'schedule']);
  });

  it('fire-all keeps the most recent maxCatchUp ticks and records the older ones as dropped', () => {
    down('fire-all', { maxCatchUp: 3 })
      .when(advance(T0 + 10 * S + 200))
      .then([
        { type: 'TaskAssigned' },
        {
          type: 'TaskMisfired',
          data: { action: 'dropped', policy: 'fire-all', after: iso(T0), until: iso(T0 + 8 * S - 1), count: 7 },
        },
        { type: 'TaskFired', data: { scheduledAt: iso(T0 + 8 * S), trigger: 'catch-up' } },
        { type: 'TaskFired', data: { scheduledAt: iso(T0 + 9 * S), trigger: 'catch-up' } },
        { type: 'TaskFired', data: { scheduledAt: iso(T0 + 10 * S), trigger: 'schedule' } },
      ]);
  });

  it('fire-once coalesces the missed ticks into one late fire of the newest', () => {
    down('fire-once', { threshold: '200ms' })
      .when(advance(T0 + 10 * S + 500))
      .then([
        { type: 'TaskAssigned' },
        { type: 'TaskMisfired', data: { action: 'coalesced', until: iso(T0 + 10 * S - 1), count: 9 } },
        { type: 'TaskFired', data: { scheduledAt: iso(T0 + 10 * S), trigger: 'catch-up' } },
      ]);
  });

  it('records the cause when the node was overloaded, and none when it simply was not there', () => {
    const misfireOf = (events: TaskEvent[]) => events.find((e) => e.type === 'TaskMisfired');
    const overloaded = down('fire-once')
      .when({ type: 'Advance', now: T0 + 3 * S + 500, lease: LEASE, overloaded: true })
      .events();
    expect(misfireOf(overloaded)).toMatchObject({ data: { action: 'coalesced', count: 2, cause: 'overload' } });
    expect(overloaded.filter((e) => e.type === 'TaskFired')).toHaveLength(1);
    const down3s = down('fire-once')
      .when(advance(T0 + 3 * S + 500))
      .events();
    expect(misfireOf(down3s)?.data).not.toHaveProperty('cause');
    // Overloaded but on time: nothing missed, nothing recorded.
    expect(
      misfireOf(
        down('fire-once')
          .when({ type: 'Advance', now: T0 + S + 5, lease: LEASE, overloaded: true })
          .events(),
      ),
    ).toBeUndefined();
  });

  it('skip drops late ticks and fires an on-time one', () => {
    down('skip', { threshold: '200ms' })
      .when(advance(T0 + 10 * S + 500))
      .then([
        { type: 'TaskAssigned' },
        { type: 'TaskMisfired', data: { action: 'dropped', until: iso(T0 + 10 * S), count: 10 } },
      ]);
    down('skip')
      .when(advance(T0 + 10 * S + 20))
      .then([
        { type: 'TaskAssigned' },
        { type: 'TaskMisfired', data: { action: 'dropped', until: iso(T0 + 10 * S - 1), count: 9 } },
        { type: 'TaskFired', data: { scheduledAt: iso(T0 + 10 * S), trigger: 'schedule' } },
      ]);
  });

  it('ticks older than the catch-up window are dropped, whatever the policy', () => {
    const events = down('fire-all', { catchUpWindow: '3s' })
      .when(advance(T0 + 10 * S))
      .events();
    expect(events[1]).toMatchObject({
      type: 'TaskMisfired',
      data: { action: 'dropped', until: iso(T0 + 7 * S - 1), count: 6 },
    });
    expect(events.filter((e) => e.type === 'TaskFired')).toHaveLength(4);
    given([created(spec({ schedule: { every: '1h' }, misfire: { policy: 'fire-once', catchUpWindow: '10m' } }))])
      .when(advance(T0 + 3.5 * 3_600 * S))
      .then([
        { type: 'TaskAssigned' },
        { type: 'TaskMisfired', data: { action: 'dropped', until: iso(T0 + 3 * 3_600 * S), count: 3 } },
      ]);
  });

  it('after the downtime is handled, the task is back on its schedule', () => {
    const history = fireAt(
      [created(spec({ misfire: { policy: 'fire-once', threshold: '200ms' } }))],
      T0 + 10 * S + 500,
    );
    expect(history.at(-1)).toMatchObject({ type: 'TaskFired', data: { scheduledAt: iso(T0 + 10 * S) } });
    // Running under overlap skip, the next tick is still a wake-up: it is recorded as skipped.
    expect(nextWakeAt(foldTask('t1', history))).toBe(T0 + 11 * S);
    expect(nextWakeAt(foldTask('t1', done(history, T0 + 10 * S + 600)))).toBe(T0 + 11 * S);
  });
});

describe('overlap policies while a fire has no outcome', () => {
  const running = (overlap: string, extra: object = {}) =>
    fireAt([created(spec({ overlap: overlap as never, ...extra }))], T0 + S);

  it('skip records the tick as skipped', () => {
    given(running('skip'))
      .when(advance(T0 + 2 * S))
      .then([{ type: 'TaskSkipped', data: { after: iso(T0 + S), until: iso(T0 + 2 * S), count: 1, policy: 'skip' } }]);
  });

  it('allow fires alongside', () => {
    given(running('allow'))
      .when(advance(T0 + 2 * S))
      .then([{ type: 'TaskFired', data: { scheduledAt: iso(T0 + 2 * S) } }]);
  });

  it('cancel-previous fails the running fire as cancelled (no retry) and fires the new tick', () => {
    given(running('cancel-previous', { retry: { maxAttempts: 3 } }))
      .when(advance(T0 + 2 * S))
      .then([
        { type: 'TaskFailed', data: { fireId: fireIdOf('t1', T0 + S), reason: 'cancelled' } },
        { type: 'TaskFired', data: { scheduledAt: iso(T0 + 2 * S) } },
      ]);
    const e = decide(advance(T0 + 2 * S), foldTask('t1', running('cancel-previous', { retry: { maxAttempts: 3 } })));
    expect(e[0]).not.toHaveProperty('data.willRetryAt');
  });

  it('buffer-one keeps the newest tick pending, skips the ones it displaces, and fires it on completion', () => {
    const base = running('buffer-one', { misfire: { policy: 'fire-all' } });
    given(base)
      .when(advance(T0 + 2 * S))
      .thenNothingHappened();
    expect(nextWakeAt(foldTask('t1', base))).toBe(T0 + 3 * S);
    const displaced = given(base)
      .when(advance(T0 + 3 * S))
      .then([{ type: 'TaskSkipped', data: { until: iso(T0 + 3 * S - 1), count: 1, policy: 'buffer-one' } }]);
    const finished = done([...base, ...displaced], T0 + 3 * S + 300);
    given(finished)
      .when(advance(T0 + 3 * S + 300))
      .then([{ type: 'TaskFired', data: { scheduledAt: iso(T0 + 3 * S), trigger: 'schedule' } }]);
  });

  it('buffer-all lets ticks pile up and fires them one by one as each run completes', () => {
    const base = running('buffer-all', { misfire: { policy: 'fire-all' } });
    given(base)
      .when(advance(T0 + 4 * S))
      .thenNothingHappened();
    expect(nextWakeAt(foldTask('t1', base))).toBe(T0 + S + 60_000);
    const first = given(done(base, T0 + 4 * S))
      .when(advance(T0 + 4 * S))
      .events();
    expect(first.filter((e) => e.type === 'TaskFired').map((e) => e.data.scheduledAt)).toEqual([iso(T0 + 2 * S)]);
  });
});

describe('timeouts and retries', () => {
  const retrying = spec({
    retry: { maxAttempts: 3, backoff: { initial: '1s', multiplier: 2, jitter: 0 } },
    timeout: '5s',
  });

  it('an attempt with no outcome by its deadline fails as timed out, with the retry time', () => {
    const history = fireAt([created(retrying)], T0 + S);
    given(history)
      .when(advance(T0 + 6 * S))
      .then([
        { type: 'TaskFailed', data: { reason: 'timeout', attempt: 1, willRetryAt: iso(T0 + 7 * S) } },
        // Nobody advanced the task at 2..5s (a jump in time): those ticks are missed, the 6s tick is skipped
        // because the fire still awaits its retry (overlap skip).
        { type: 'TaskMisfired', data: { action: 'coalesced', count: 4 } },
        { type: 'TaskSkipped', data: { until: iso(T0 + 6 * S), count: 1 } },
      ]);
  });

  it('retries at willRetryAt as a new attempt of the same fire, then fails for good', () => {
    let h = fireAt([created(retrying)], T0 + S);
    const fireId = fireIdOf('t1', T0 + S);
    h = [
      ...h,
      {
        type: 'TaskFailed',
        data: {
          v: 1,
          taskId: 't1',
          fireId,
          attempt: 1,
          at: iso(T0 + 2 * S),
          reason: 'error',
          message: 'boom',
          durationMs: 1000,
          willRetryAt: iso(T0 + 3 * S),
          details: [],
        },
      },
    ];
    const retry = given(h)
      .when(advance(T0 + 3 * S))
      .events();
    // Ticks are decided first (here: skipped, the fire still runs), then the retry.
    expect(retry.map((e) => e.type)).toEqual(['TaskMisfired', 'TaskSkipped', 'TaskFired']);
    expect(retry.at(-1)).toMatchObject({
      type: 'TaskFired',
      data: { fireId, attempt: 2, trigger: 'retry', scheduledAt: iso(T0 + S) },
    });
    h = [...h, ...retry];
    const outcome = decide(
      {
        type: 'RecordOutcome',
        outcome: { fireId, attempt: 2, status: 'failed', message: 'again', at: T0 + 3 * S + 10 },
      },
      foldTask('t1', h),
    );
    expect(outcome).toMatchObject([
      { type: 'TaskFailed', data: { attempt: 2, willRetryAt: iso(T0 + 3 * S + 10 + 2 * S) } },
    ]);
    h = [...h, ...outcome, ...decide(advance(T0 + 5 * S + 10), foldTask('t1', [...h, ...outcome]))];
    const last = decide(
      { type: 'RecordOutcome', outcome: { fireId, attempt: 3, status: 'failed', message: 'third', at: T0 + 6 * S } },
      foldTask('t1', h),
    );
    expect(last).toMatchObject([{ type: 'TaskFailed', data: { attempt: 3, message: 'third' } }]);
    expect(last[0]).not.toHaveProperty('data.willRetryAt');
    const final = foldTask('t1', [...h, ...last]);
    expect(final.inFlight.filter((f) => f.fireId === fireId)).toEqual([]);
    expect(final.failureStreak).toBe(1);
  });

  it('outcomes for stale attempts are ignored', () => {
    const h = fireAt([created(retrying)], T0 + S);
    given(h)
      .when({
        type: 'RecordOutcome',
        outcome: { fireId: fireIdOf('t1', T0 + S), attempt: 2, status: 'succeeded', at: T0 + 2 * S },
      })
      .thenNothingHappened();
    given(h)
      .when({
        type: 'RecordOutcome',
        outcome: { fireId: fireIdOf('t1', T0 + 9 * S), attempt: 1, status: 'succeeded', at: T0 + 2 * S },
      })
      .thenNothingHappened();
  });

  it('backoff grows exponentially, is capped, and its jitter is stable per fire', () => {
    const s = spec({ retry: { maxAttempts: 10, backoff: { initial: '1s', max: '10s', multiplier: 3, jitter: 0.5 } } });
    const delays = [1, 2, 3, 4].map((a) => retryDelay(s, 'f', a));
    expect(delays).toEqual([1, 2, 3, 4].map((a) => retryDelay(s, 'f', a)));
    [1_000, 3_000, 9_000, 10_000].forEach((base, i) => {
      expect(delays[i]).toBeLessThanOrEqual(base);
      expect(delays[i]).toBeGreaterThanOrEqual(base / 2);
    });
  });
});

describe('schedule kinds and windows', () => {
  it('delayAfter waits for completion, then counts from it', () => {
    const s = spec({ schedule: { delayAfter: '10s' } });
    const h = fireAt([created(s)], T0 + 10 * S);
    expect(h.at(-1)).toMatchObject({ type: 'TaskFired', data: { scheduledAt: iso(T0 + 10 * S) } });
    expect(nextWakeAt(foldTask('t1', h))).toBe(T0 + 10 * S + 60_000);
    expect(nextWakeAt(foldTask('t1', done(h, T0 + 13 * S)))).toBe(T0 + 23 * S);
  });

  it('a one-shot fires once; one created in the past fires late by the misfire policy', () => {
    const s = spec({ schedule: { at: iso(T0 + 5 * S) } });
    const h = fireAt([created(s)], T0 + 5 * S);
    expect(h.at(-1)).toMatchObject({ type: 'TaskFired', data: { scheduledAt: iso(T0 + 5 * S) } });
    expect(nextWakeAt(foldTask('t1', done(h, T0 + 6 * S)))).toBeNull();
    const past = spec({ schedule: { at: iso(T0 - 60 * S) } });
    given([created(past)])
      .when(advance(T0 + 1))
      .then([
        { type: 'TaskAssigned' },
        { type: 'TaskFired', data: { scheduledAt: iso(T0 - 60 * S), trigger: 'catch-up' } },
      ]);
  });

  it('maxRuns stops the schedule after that many fires', () => {
    const s = spec({ schedule: { every: '1s', maxRuns: 2 }, overlap: 'allow' });
    const h = fireAt(fireAt([created(s)], T0 + S), T0 + 2 * S);
    expect(h.filter((e) => e.type === 'TaskFired')).toHaveLength(2);
    given(h)
      .when(advance(T0 + 3 * S))
      .thenNothingHappened();
    expect(nextWakeAt(foldTask('t1', done(h, T0 + 3 * S)))).toBeNull();
  });

  it('ticks of a paused task are not missed: resuming starts from the resume', () => {
    const paused: TaskEvent = { type: 'TaskPaused', data: { v: 1, taskId: 't1', at: iso(T0 + 500) } };
    given([created(), paused])
      .when(advance(T0 + 5 * S))
      .thenNothingHappened();
    expect(nextWakeAt(foldTask('t1', [created(), paused]))).toBeNull();
    const resumed: TaskEvent = { type: 'TaskResumed', data: { v: 1, taskId: 't1', at: iso(T0 + 5 * S + 500) } };
    given([created(), paused, resumed])
      .when(advance(T0 + 6 * S))
      .then([
        { type: 'TaskAssigned' },
        { type: 'TaskFired', data: { scheduledAt: iso(T0 + 6 * S), trigger: 'schedule' } },
      ]);
  });

  it('jitter delays a fire by a stable offset below the jitter, keeping scheduledAt nominal', () => {
    const s = spec({ schedule: { every: '1m', jitter: '10s' } });
    const wake = nextWakeAt(foldTask('t1', [created(s)])) as number;
    expect(wake).toBeGreaterThanOrEqual(T0 + 60 * S);
    expect(wake).toBeLessThan(T0 + 70 * S);
    given([created(s)])
      .when(advance(wake - 1))
      .thenNothingHappened();
    given([created(s)])
      .when(advance(wake))
      .then([
        { type: 'TaskAssigned' },
        { type: 'TaskFired', data: { scheduledAt: iso(T0 + 60 * S), firedAt: iso(wake) } },
      ]);
  });

  it('a new schedule takes effect from the update, without catching up its past ticks', () => {
    const updated: TaskEvent = {
      type: 'TaskUpdated',
      data: { v: 1, taskId: 't1', spec: spec({ schedule: { every: '10s' } }), at: iso(T0 + 3_500) },
    };
    const state = foldTask('t1', [created(), updated]);
    expect(nextWakeAt(state)).toBe(T0 + 13_500);
  });
});
