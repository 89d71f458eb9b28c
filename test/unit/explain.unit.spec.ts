import { describe, expect, it } from 'vitest';
import type { ClusterEvent } from '../../domain/cluster/events.js';
import { explainTick, type Explanation, type LoggedEvent } from '../../domain/projections/explain.js';
import { emptyTaskHistory, foldTaskHistory } from '../../domain/task/capture.js';
import { decide, jitterOf } from '../../domain/task/decide.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { foldTask } from '../../domain/task/state.js';
import { by, life } from './support/projectionFixtures.js';
import { T0, iso, spec } from './support/taskFixtures.js';

const S = 1_000;

type Recorded = TaskEvent | ReturnType<typeof by>;

/** An operator's change or manual fire comes from a user, everything else from the node that decided it. */
const defaultActor = (event: TaskEvent): string =>
  /^Task(Created|Updated|Paused|Resumed|Deleted|Restored)$/.test(event.type) ||
  (event.type === 'TaskFired' && event.data.trigger === 'manual')
    ? 'user:alice'
    : 'node:n1';

/** The stream as stored: positions from `position`, revisions from `revision`, in the order given. */
const logged = (items: Recorded[], revision = 0, position = 1): LoggedEvent<TaskEvent>[] =>
  items.map((item, i) => {
    const { event, metadata } = 'event' in item ? item : { event: item, metadata: { actor: defaultActor(item) } };
    // by() annotates task and cluster events alike; a task's stream holds only the former.
    return { event: event as TaskEvent, metadata, position: position + i, revision: revision + i };
  });

const clusterLog = (events: ClusterEvent[]): LoggedEvent<ClusterEvent>[] =>
  events.map((event, i) => ({ event, metadata: { actor: 'node:n2' }, position: 1_000 + i, revision: i }));

const explainStream = (
  task: LoggedEvent<TaskEvent>[],
  at: number,
  now: number,
  cluster: LoggedEvent<ClusterEvent>[] = [],
): Explanation => explainTick({ taskId: 't1', at, now, task, cluster });

const ask = (task: Recorded[], at: number, now: number, cluster: LoggedEvent<ClusterEvent>[] = []): Explanation =>
  explainStream(logged(task), at, now, cluster);

const typesOf = (explanation: Explanation): string[] => explanation.evidence.map((e) => e.type);

describe('explain: why a task did or did not fire around a time', () => {
  it('fired: how late, on which node and epoch, how it ended, and a manual fire near the time', () => {
    const task = life(spec(), T0)
      .advance(T0 + S + 12)
      .succeed(T0 + S + 352)
      .trigger(T0 + S + 600, 'smoke test').events;
    const answer = ask(task, T0 + S + 700, T0 + S + 800);
    expect(answer).toMatchObject({ verdict: 'fired', tick: iso(T0 + S), at: iso(T0 + S + 700) });
    expect(answer.summary).toContain('fired 12 ms late on n1 (schedule), succeeded after 340 ms');
    expect(answer.summary).toContain(`also fired manually at ${iso(T0 + S + 600)} by user:alice`);
    expect(answer.details).toMatchObject({
      tickChosen: 'latest-at-or-before',
      latenessMs: 12,
      node: 'n1',
      epoch: 7,
      attempts: 1,
      outcome: 'succeeded',
      durationMs: 340,
      previousTick: null,
      nextTick: iso(T0 + 2 * S),
      manualFires: [{ trigger: 'manual', reason: 'smoke test', actor: 'user:alice' }],
    });
    expect(typesOf(answer)).toEqual(['TaskAssigned', 'TaskFired', 'TaskSucceeded', 'TaskFired']);
    expect(answer.evidence[1]).toMatchObject({ revision: 2, actor: 'node:n1', data: { scheduledAt: iso(T0 + S) } });
  });

  it('fired: a retry that succeeded counts every attempt and its outcome', () => {
    const retrying = spec({ retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } } });
    const task = life(retrying, T0)
      .advance(T0 + S + 12)
      .fail(T0 + S + 40, 'db down')
      .advance(T0 + 2 * S + 60)
      .succeed(T0 + 2 * S + 90).events;
    const answer = ask(task, T0 + S + 100, T0 + 3 * S);
    expect(answer).toMatchObject({ verdict: 'fired', tick: iso(T0 + S) });
    expect(answer.details).toMatchObject({ attempts: 2, outcome: 'succeeded', durationMs: 2 * S + 90 - (S + 12) });
    expect(answer.summary).toContain('on attempt 2');
    expect(typesOf(answer)).toEqual(['TaskAssigned', 'TaskFired', 'TaskFailed', 'TaskFired', 'TaskSucceeded']);
  });

  it('fired: an attempt that timed out, with no retry left', () => {
    const task = life(spec({ timeout: '100ms' }), T0)
      .advance(T0 + S + 3)
      .advance(T0 + S + 103).events;
    const answer = ask(task, T0 + S, T0 + S + 500);
    expect(answer).toMatchObject({ verdict: 'fired', tick: iso(T0 + S) });
    expect(answer.details).toMatchObject({ outcome: 'timed-out', attempts: 1, message: 'no outcome within 100ms' });
    expect(answer.summary).toContain('timed out on attempt 1');
    expect(typesOf(answer)).toEqual(['TaskAssigned', 'TaskFired', 'TaskFailed']);
  });

  it("fired: jitter delays the fire, but the fire's tick is the tick of the schedule", () => {
    const jittered = spec({ schedule: { every: '1s', jitter: '500ms' } });
    const created = life(jittered, T0);
    const jitter = jitterOf(foldTask('t1', created.events), T0 + S);
    const answer = ask(created.advance(T0 + S + jitter + 2).events, T0 + S + 1, T0 + 2 * S);
    expect(answer).toMatchObject({ verdict: 'fired', tick: iso(T0 + S) });
    expect(answer.details).toMatchObject({ latenessMs: jitter + 2, jitterMs: jitter });
  });

  it('skipped: names the overlap policy and the fire that was still running', () => {
    const task = life(spec({ timeout: '1m' }), T0)
      .advance(T0 + S)
      .advance(T0 + 2 * S + 5).events;
    const answer = ask(task, T0 + 2 * S + 100, T0 + 3 * S);
    expect(answer).toMatchObject({ verdict: 'skipped', tick: iso(T0 + 2 * S) });
    expect(answer.details).toMatchObject({
      policy: 'skip',
      range: { after: iso(T0 + S), until: iso(T0 + 2 * S), count: 1 },
      running: [{ scheduledAt: iso(T0 + S), trigger: 'schedule', attempt: 1 }],
    });
    expect(answer.summary).toContain(`the fire of ${iso(T0 + S)}`);
    expect(typesOf(answer)).toEqual(['TaskFired', 'TaskSkipped']);
  });

  it('misfired: fire-once into a catch-up the overlap policy skipped (a fire still running) says so', () => {
    // The first fire never answers; the node is down for 9 s; the catch-up tick finds it still running.
    const task = life(spec({ timeout: '1m', misfire: { threshold: '100ms' } }), T0)
      .advance(T0 + S)
      .advance(T0 + 10 * S + 500, { node: 'n1', epoch: 8, reason: 'recovered' }).events;
    const missed = ask(task, T0 + 5 * S + 500, T0 + 11 * S);
    expect(missed).toMatchObject({ verdict: 'misfired', tick: iso(T0 + 5 * S) });
    expect(missed.details).toMatchObject({
      action: 'coalesced',
      coalescedInto: null,
      catchUpSkipped: { policy: 'skip' },
    });
    expect(missed.summary).toContain('which the overlap policy "skip" skipped: a fire was still running');
    expect(missed.summary).not.toContain('null');
    expect(typesOf(missed)).toEqual(['TaskReassigned', 'TaskMisfired', 'TaskSkipped']);
  });

  it('misfired: fire-once after downtime coalesces the missed ticks into the catch-up fire', () => {
    const task = life(spec({ misfire: { threshold: '100ms' } }), T0)
      .advance(T0 + S)
      .succeed(T0 + S + 5)
      .advance(T0 + 10 * S + 500, { node: 'n1', epoch: 8, reason: 'recovered' }).events;
    const missed = ask(task, T0 + 5 * S + 500, T0 + 11 * S);
    expect(missed).toMatchObject({ verdict: 'misfired', tick: iso(T0 + 5 * S) });
    expect(missed.details).toMatchObject({
      action: 'coalesced',
      policy: 'fire-once',
      coalescedInto: iso(T0 + 10 * S),
      lateMs: 5 * S + 500,
      maxCatchUp: 100,
      catchUpWindow: null,
      claim: { node: 'n1', epoch: 8, reason: 'recovered' },
    });
    expect(missed.summary).toContain('when n1 claimed the task (recovered)');
    expect(typesOf(missed)).toEqual(['TaskReassigned', 'TaskMisfired', 'TaskFired']);

    const caughtUp = ask(task, T0 + 10 * S + 200, T0 + 11 * S);
    expect(caughtUp).toMatchObject({ verdict: 'fired', tick: iso(T0 + 10 * S) });
    expect(caughtUp.details).toMatchObject({ trigger: 'catch-up', latenessMs: 500, epoch: 8, outcome: 'in-flight' });
  });

  it('misfired because the node was overloaded: says so', () => {
    const task = life(spec({ misfire: { threshold: '100ms' } }), T0)
      .advance(T0 + S)
      .succeed(T0 + S + 5)
      .advance(T0 + 4 * S + 300, undefined, true).events;
    const missed = ask(task, T0 + 2 * S + 500, T0 + 5 * S);
    expect(missed).toMatchObject({ verdict: 'misfired', tick: iso(T0 + 2 * S) });
    expect(missed.details).toMatchObject({ action: 'coalesced', cause: 'overload', lateMs: 2 * S + 300 });
    expect(missed.summary).toContain('the node was overloaded');
  });

  it('misfired: the skip policy drops the late ticks, and says why', () => {
    const task = life(spec({ misfire: { policy: 'skip', catchUpWindow: '1h' } }), T0).advance(T0 + 10 * S).events;
    const answer = ask(task, T0 + 3 * S + 1, T0 + 10 * S);
    expect(answer).toMatchObject({ verdict: 'misfired', tick: iso(T0 + 3 * S) });
    expect(answer.details).toMatchObject({
      action: 'dropped',
      policy: 'skip',
      dropReason: 'the skip policy does not fire late ticks',
      catchUpWindow: 3_600_000,
      range: { count: 9 },
    });
    expect(typesOf(answer)).toEqual(['TaskAssigned', 'TaskMisfired']);
  });

  it('paused: who paused it, when, why, and when it was resumed', () => {
    const task = life(spec(), T0)
      .advance(T0 + S)
      .succeed(T0 + S + 5)
      .pause(T0 + S + 500, 'ledger migration')
      .resume(T0 + 4 * S + 200).events;
    const stream = task.map((e) => (e.type === 'TaskPaused' ? by('user:bob', e) : e));
    const answer = ask(stream, T0 + 2 * S + 100, T0 + 10 * S);
    expect(answer).toMatchObject({ verdict: 'paused', tick: iso(T0 + 2 * S) });
    expect(answer.details).toMatchObject({
      pausedAt: iso(T0 + S + 500),
      pausedBy: 'user:bob',
      reason: 'ledger migration',
      resumedAt: iso(T0 + 4 * S + 200),
      resumedBy: 'user:alice',
    });
    expect(answer.summary).toContain('paused at');
    expect(typesOf(answer)).toEqual(['TaskPaused', 'TaskResumed']);
  });

  it('deleted: who deleted it and why; not restored since', () => {
    const task = life(spec(), T0)
      .delete(T0 + 500, 'moved to the warehouse')
      .events.map((e) => (e.type === 'TaskDeleted' ? by('user:carol', e) : e));
    const answer = ask(task, T0 + 3 * S, T0 + 10 * S);
    expect(answer).toMatchObject({ verdict: 'deleted', tick: iso(T0 + 3 * S) });
    expect(answer.details).toMatchObject({
      deletedBy: 'user:carol',
      reason: 'moved to the warehouse',
      restoredAt: null,
    });
    expect(typesOf(answer)).toEqual(['TaskDeleted']);
  });

  it('not-created: the time asked about is before the task existed', () => {
    const answer = ask(life(spec(), T0).events, T0 - 60 * S, T0 + S);
    expect(answer).toMatchObject({ verdict: 'not-created', tick: null });
    expect(answer.details).toEqual({ createdAt: iso(T0), createdBy: 'user:alice' });
    expect(typesOf(answer)).toEqual(['TaskCreated']);
    expect(ask([], T0, T0).summary).toBe("no task 't1' has been created");
  });

  it("not-started: before the schedule's startAt; the tick is its first", () => {
    const later = spec({ schedule: { every: '1s', startAt: iso(T0 + 60 * S) } });
    const answer = ask(life(later, T0).events, T0 + 5 * S, T0 + 6 * S);
    expect(answer).toMatchObject({ verdict: 'not-started', tick: iso(T0 + 60 * S) });
    expect(answer.details).toMatchObject({ startAt: iso(T0 + 60 * S), firstTick: iso(T0 + 60 * S) });
    expect(typesOf(answer)).toEqual(['TaskCreated']);
  });

  it("ended: after the schedule's endAt", () => {
    const ending = spec({ schedule: { every: '1s', endAt: iso(T0 + 3 * S) } });
    const answer = ask(life(ending, T0).events, T0 + 10 * S, T0 + 20 * S);
    expect(answer).toMatchObject({ verdict: 'ended', tick: iso(T0 + 3 * S) });
    expect(answer.details).toMatchObject({ endedBy: 'end-at', endAt: iso(T0 + 3 * S), lastTick: iso(T0 + 3 * S) });
    expect(typesOf(answer)).toEqual(['TaskCreated']);
  });

  it('ended: maxRuns was reached before the tick', () => {
    const task = life(spec({ schedule: { every: '1s', maxRuns: 2 } }), T0)
      .advance(T0 + S)
      .succeed(T0 + S + 10)
      .advance(T0 + 2 * S)
      .succeed(T0 + 2 * S + 10)
      .advance(T0 + 3 * S).events;
    const answer = ask(task, T0 + 3 * S + 500, T0 + 10 * S);
    expect(answer).toMatchObject({ verdict: 'ended', tick: iso(T0 + 3 * S) });
    expect(answer.details).toMatchObject({ endedBy: 'max-runs', maxRuns: 2, runs: 2, lastRun: iso(T0 + 2 * S) });
    expect(typesOf(answer)).toEqual(['TaskCreated', 'TaskFired']);
  });

  it('ended: a one-shot that already fired; asked at its instant, it fired', () => {
    const once = spec({ schedule: { at: iso(T0 + 5 * S) } });
    const task = life(once, T0)
      .advance(T0 + 5 * S + 7)
      .succeed(T0 + 5 * S + 20).events;
    const after = ask(task, T0 + 60 * S, T0 + 61 * S);
    expect(after).toMatchObject({ verdict: 'ended', tick: iso(T0 + 5 * S) });
    expect(after.details).toMatchObject({ endedBy: 'one-shot-fired', latenessMs: 7, outcome: 'succeeded' });
    expect(typesOf(after)).toEqual(['TaskFired', 'TaskSucceeded']);
    expect(ask(task, T0 + 5 * S, T0 + 61 * S)).toMatchObject({ verdict: 'fired', tick: iso(T0 + 5 * S) });
  });

  it('no-owner: the tick passed unhandled while its recorded owner had left the cluster', () => {
    const task = life(spec(), T0)
      .advance(T0 + S)
      .succeed(T0 + S + 5).events;
    const cluster = clusterLog([{ type: 'NodeLeft', data: { v: 1, node: 'n1', at: iso(T0 + 2 * S) } }]);
    const answer = ask(task, T0 + 3 * S + 100, T0 + 10 * S, cluster);
    expect(answer).toMatchObject({ verdict: 'no-owner', tick: iso(T0 + 3 * S) });
    expect(answer.details).toMatchObject({
      owner: { node: 'n1', epoch: 7 },
      ownerLeftAt: iso(T0 + 2 * S),
      overdueMs: 7 * S,
      unplaceable: false,
      laterClaim: null,
    });
    expect(answer.summary).toContain('its recorded owner was n1 (epoch 7), which left the cluster');
    expect(typesOf(answer)).toEqual(['TaskCreated', 'TaskAssigned', 'NodeLeft']);
  });

  it('no-owner: a pinned task no live node matches was never claimed', () => {
    const task = life(spec({ runOn: { labels: { zone: 'z9' } } }), T0).events;
    const cluster = clusterLog([
      { type: 'TasksUnplaceable', data: { v: 1, count: 1, taskIds: ['t1'], at: iso(T0 + 10) } },
    ]);
    const answer = ask(task, T0 + 3 * S, T0 + 10 * S, cluster);
    expect(answer).toMatchObject({ verdict: 'no-owner', tick: iso(T0 + 3 * S) });
    expect(answer.details).toMatchObject({ owner: null, releasedBy: null, unplaceable: true });
    expect(answer.summary).toContain('no node had ever claimed it');
    expect(typesOf(answer)).toEqual(['TaskCreated', 'TasksUnplaceable']);
  });

  it('no-owner: a pause after the tick passed over it before anyone handled it', () => {
    const task = life(spec(), T0)
      .advance(T0 + S)
      .succeed(T0 + S + 5)
      .pause(T0 + 5 * S)
      .resume(T0 + 6 * S).events;
    const answer = ask(task, T0 + 3 * S, T0 + 10 * S);
    expect(answer).toMatchObject({ verdict: 'no-owner', tick: iso(T0 + 3 * S) });
    expect(answer.details).toMatchObject({ passedOverBy: { type: 'TaskResumed', at: iso(T0 + 6 * S) } });
    expect(typesOf(answer)).toEqual(['TaskCreated', 'TaskAssigned', 'TaskResumed']);
  });

  it('not-due: the tick is after now, or due within the misfire threshold and not handled yet', () => {
    const task = life(spec(), T0)
      .advance(T0 + S)
      .succeed(T0 + S + 5).events;
    const future = ask(task, T0 + 5 * S, T0 + 2 * S + 300);
    expect(future).toMatchObject({ verdict: 'not-due', tick: iso(T0 + 5 * S) });
    expect(future.details).toMatchObject({ dueAt: iso(T0 + 5 * S), threshold: 1_000 });
    expect(future.summary).toContain('after now');
    expect(typesOf(future)).toEqual(['TaskCreated']);

    const recent = ask(task, T0 + 2 * S, T0 + 2 * S + 500);
    expect(recent).toMatchObject({ verdict: 'not-due', tick: iso(T0 + 2 * S) });
    expect(recent.summary).toContain('within the misfire threshold');
  });

  it('not-due: a tick that buffer-one keeps waits for the running fire', () => {
    const task = life(spec({ overlap: 'buffer-one', timeout: '1m' }), T0)
      .advance(T0 + S)
      .advance(T0 + 2 * S + 10).events;
    const answer = ask(task, T0 + 2 * S + 500, T0 + 2 * S + 5 * S);
    expect(answer).toMatchObject({ verdict: 'not-due', tick: iso(T0 + 2 * S) });
    expect(answer.details).toMatchObject({ overlap: 'buffer-one', running: [{ scheduledAt: iso(T0 + S) }] });
    expect(typesOf(answer)).toEqual(['TaskFired']);
  });

  it('no-tick: a one-shot at another time; the answer gives its tick', () => {
    const once = spec({ schedule: { at: iso(T0 + 60 * S) } });
    const answer = ask(life(once, T0).events, T0 + 10 * S, T0 + 20 * S);
    expect(answer).toMatchObject({ verdict: 'no-tick', tick: null });
    expect(answer.details).toMatchObject({ previousTick: null, nextTick: iso(T0 + 60 * S) });
    expect(typesOf(answer)).toEqual(['TaskCreated']);
  });

  it('a cron schedule across a DST change: the schedule places the tick (02:30 Berlin fires at 03:00 on 29 March)', () => {
    const nightly = spec({ schedule: { cron: '30 2 * * *', timezone: 'Europe/Berlin' } });
    const task = life(nightly, Date.parse('2026-03-27T12:00:00Z'))
      .advance(Date.parse('2026-03-28T01:30:00.005Z'))
      .succeed(Date.parse('2026-03-28T01:30:01Z'))
      .advance(Date.parse('2026-03-29T01:00:00.010Z')).events;
    const answer = ask(task, Date.parse('2026-03-29T01:20:00Z'), Date.parse('2026-03-29T01:30:00Z'));
    expect(answer).toMatchObject({ verdict: 'fired', tick: '2026-03-29T01:00:00.000Z' });
    expect(answer.details).toMatchObject({
      latenessMs: 10,
      previousTick: '2026-03-28T01:30:00.000Z',
      nextTick: '2026-03-30T00:30:00.000Z',
    });
    expect(typesOf(answer)).toEqual(['TaskFired']);
  });

  it('a changed schedule: the tick comes from the schedule in force at the time asked about', () => {
    const task = life(spec({ schedule: { every: '10s' } }), T0)
      .advance(T0 + 10 * S)
      .succeed(T0 + 10 * S + 5)
      .update(spec({ schedule: { every: '7s' } }), T0 + 15 * S)
      .advance(T0 + 22 * S)
      .succeed(T0 + 22 * S + 5).events;
    const before = ask(task, T0 + 12 * S, T0 + 30 * S);
    expect(before).toMatchObject({ verdict: 'fired', tick: iso(T0 + 10 * S) });
    expect(before.details).toMatchObject({ schedule: { every: 10_000 }, nextTick: iso(T0 + 20 * S) });
    expect(typesOf(before)).toEqual(['TaskAssigned', 'TaskFired', 'TaskSucceeded']);

    const after = ask(task, T0 + 16 * S, T0 + 30 * S);
    expect(after).toMatchObject({ verdict: 'fired', tick: iso(T0 + 22 * S) });
    expect(after.details).toMatchObject({
      tickChosen: 'next-after',
      schedule: { every: 7_000 },
      scheduleSince: iso(T0 + 15 * S),
    });
    expect(typesOf(after)).toEqual(['TaskFired', 'TaskSucceeded']);
  });

  describe('retention', () => {
    // Revisions 0-10 are truncated; the capture at the head remembers the definitions among them.
    const events = life(spec(), T0)
      .advance(T0 + S)
      .succeed(T0 + S + 5)
      .pause(T0 + S + 500, 'maintenance')
      .resume(T0 + 3 * S + 500)
      .advance(T0 + 4 * S)
      .succeed(T0 + 4 * S + 5)
      .advance(T0 + 5 * S)
      .succeed(T0 + 5 * S + 5).events;
    const history = emptyTaskHistory();
    events.forEach((e, revision) => foldTaskHistory(history, e, revision, { actor: defaultActor(e) }));
    const [captured] = decide({ type: 'CaptureState', now: T0 + 5 * S + 6, history }, foldTask('t1', events));
    const kept = logged([...events.slice(8), captured as TaskEvent], 8, 20);

    it('unknown: the record of a tick before the first kept event is gone', () => {
      expect(kept[0]?.event.type).toBe('TaskFired');
      const answer = explainStream(kept, T0 + S, T0 + 6 * S);
      expect(answer).toMatchObject({ verdict: 'unknown', tick: iso(T0 + S) });
      expect(answer.details).toMatchObject({ truncatedBefore: 8, knownFrom: iso(T0 + 5 * S), cursorPastTick: true });
      expect(answer.summary).toContain('before revision 8');
      expect(typesOf(answer)).toEqual(['TaskStateCaptured']);
    });

    it("the capture's history still tells when the task was created and paused", () => {
      expect(explainStream(kept, T0 - S, T0 + 6 * S)).toMatchObject({ verdict: 'not-created' });
      const paused = explainStream(kept, T0 + 2 * S, T0 + 6 * S);
      expect(paused).toMatchObject({ verdict: 'paused', tick: iso(T0 + 2 * S) });
      expect(paused.details).toMatchObject({ reason: 'maintenance', pausedBy: 'user:alice' });
      expect(typesOf(paused)).toEqual(['TaskStateCaptured']);
    });

    it('the fires kept are explained as usual', () => {
      const answer = explainStream(kept, T0 + 5 * S, T0 + 6 * S);
      expect(answer).toMatchObject({ verdict: 'fired', tick: iso(T0 + 5 * S) });
      expect(answer.evidence.map((e) => e.revision)).toEqual([8, 9]);
    });
  });
});
