import { AlreadyExistsError, FencedError, IllegalStateError, NotFoundError, ValidationError } from '../errors/index.js';
import { toIso } from '../time/instant.js';
import { captureOf, type TaskHistory } from './capture.js';
import type { TaskEvent, TaskEventData } from './events.js';
import { fireIdOf, manualFireIdOf, unitHash } from './fireId.js';
import { scheduleOf, type Schedule } from './schedule.js';
import { sameSpec, type TaskSpec } from './spec.js';
import { evolve, isRunning, type InFlightFire, type TaskState } from './state.js';

/**
 * Decisions of a task's life: `decide(command, state) -> events`, pure. The node runtime appends what
 * comes out with the stream revision the state was folded at, so a decision taken on stale state
 * fails at the store instead of happening twice (design §3).
 */

export type OwnershipReason = TaskEventData<'TaskAssigned'>['reason'];
/** The lease a node holds on the task's slot: the epoch is its fencing token. */
export type Lease = { node: string; epoch: number; reason?: OwnershipReason };

export type OutcomeReport = {
  fireId: string;
  attempt: number;
  status: 'succeeded' | 'failed';
  message?: string;
  at: number;
  details?: TaskEventData<'TaskSucceeded'>['details'];
};

export type TaskCommand =
  | { type: 'CreateTask'; spec: TaskSpec; now: number; reason?: string }
  | { type: 'UpdateTask'; spec: TaskSpec; now: number; reason?: string }
  | { type: 'PauseTask'; now: number; reason?: string }
  | { type: 'ResumeTask'; now: number; reason?: string }
  | { type: 'DeleteTask'; now: number; reason?: string }
  | { type: 'RestoreTask'; now: number; reason?: string }
  /** A manual fire, asked for by an operator; it does not move the schedule. */
  | { type: 'TriggerTask'; now: number; lease: Lease; reason?: string }
  /**
   * Time passed: handle due ticks, retries and timeouts. `overloaded`: the node could not get to the
   * task when it was due (more work than it can do); ticks it misses are recorded with that cause.
   */
  | { type: 'Advance'; now: number; lease: Lease; overloaded?: boolean }
  | { type: 'RecordOutcome'; outcome: OutcomeReport }
  | { type: 'ReleaseTask'; now: number; lease: Lease; reason: string }
  /**
   * Records the state and `history` (every definition and ownership change up to this state) in one
   * event, so the stream may be truncated before it (retention).
   */
  | { type: 'CaptureState'; now: number; history: TaskHistory };

/** A decision's events and the state they fold to (`evolve` over them, in order). */
export type Folded = { events: TaskEvent[]; state: TaskState };

const folded = (state: TaskState, events: TaskEvent[]): Folded => ({ events, state: events.reduce(evolve, state) });

export const decide = (command: TaskCommand, state: TaskState): TaskEvent[] => {
  const { taskId } = state;
  switch (command.type) {
    case 'CreateTask': {
      if (command.spec.id !== taskId) {
        throw new ValidationError([{ path: 'id', message: `must be '${taskId}' (the task's id)` }]);
      }
      if (state.status !== 'absent') {
        throw new AlreadyExistsError(
          'task',
          taskId,
          state.status === 'deleted' ? 'it is deleted: restore it, or choose another id' : undefined,
        );
      }
      return [
        { type: 'TaskCreated', data: { v: 1, taskId, spec: command.spec, at: toIso(command.now), ...why(command) } },
      ];
    }
    case 'UpdateTask': {
      mustBeLive(state, 'update');
      if (command.spec.id !== taskId) {
        throw new ValidationError([{ path: 'id', message: `cannot change a task's id (is '${taskId}')` }]);
      }
      if (state.spec && sameSpec(state.spec, command.spec)) return [];
      return [
        { type: 'TaskUpdated', data: { v: 1, taskId, spec: command.spec, at: toIso(command.now), ...why(command) } },
      ];
    }
    case 'PauseTask':
      mustBeLive(state, 'pause');
      return state.status === 'paused'
        ? []
        : [{ type: 'TaskPaused', data: { v: 1, taskId, at: toIso(command.now), ...why(command) } }];
    case 'ResumeTask':
      mustBeLive(state, 'resume');
      return state.status === 'active'
        ? []
        : [{ type: 'TaskResumed', data: { v: 1, taskId, at: toIso(command.now), ...why(command) } }];
    case 'DeleteTask': {
      mustExist(state);
      if (state.status === 'deleted') return [];
      const deleted: TaskEvent = {
        type: 'TaskDeleted',
        data: { v: 1, taskId, at: toIso(command.now), ...why(command) },
      };
      // Attempts under way may still report (and time out); a fire only waiting for its retry is abandoned.
      const abandoned = state.inFlight
        .filter((f) => f.retryAt !== null)
        .map((f) => failedEvent(state, f, command.now, 'cancelled', 'task deleted while waiting for a retry'));
      return [deleted, ...abandoned];
    }
    case 'RestoreTask':
      mustExist(state);
      return state.status === 'deleted'
        ? [{ type: 'TaskRestored', data: { v: 1, taskId, at: toIso(command.now), ...why(command) } }]
        : [];
    case 'TriggerTask': {
      mustBeLive(state, 'trigger');
      const fireId = manualFireIdOf(taskId, command.now, state.manualFires);
      const fired = firedEvent(state, fireId, command.now, command.now, 'manual', 1, command.lease);
      return withClaim(state, command.lease, command.now, [
        fired.type === 'TaskFired' ? { ...fired, data: { ...fired.data, ...why(command) } } : fired,
      ]);
    }
    case 'Advance':
      mustExist(state);
      return withClaim(
        state,
        command.lease,
        command.now,
        advance(state, command.now, command.lease, command.overloaded === true).events,
      );
    case 'RecordOutcome':
      mustExist(state);
      return recordOutcome(state, command.outcome);
    case 'ReleaseTask':
      mustExist(state);
      return state.owner?.epoch === command.lease.epoch
        ? [
            {
              type: 'TaskReleased',
              data: {
                v: 1,
                taskId,
                node: command.lease.node,
                epoch: command.lease.epoch,
                reason: command.reason,
                at: toIso(command.now),
              },
            },
          ]
        : [];
    case 'CaptureState':
      mustExist(state);
      return [
        {
          type: 'TaskStateCaptured',
          data: { v: 1, taskId, at: toIso(command.now), state: captureOf(state), history: command.history },
        },
      ];
  }
};

/**
 * `decide`, with the state its events fold to. A time step folds its events as it decides them (each
 * tick is decided against the state the ones before it leave), so the runtime takes that state
 * instead of folding them again; other commands are folded here.
 */
export const decideFolded = (command: TaskCommand, state: TaskState): Folded => {
  if (command.type !== 'Advance') return folded(state, decide(command, state));
  mustExist(state);
  const advanced = advance(state, command.now, command.lease, command.overloaded === true);
  const events = withClaim(state, command.lease, command.now, advanced.events);
  // A claim goes first and was not folded into the advance: fold the whole decision then.
  return events === advanced.events ? advanced : folded(state, events);
};

/** The operator's reason, when one was given: recorded in the event, shown by the audit. */
const why = (command: { reason?: string }): { reason?: string } => (command.reason ? { reason: command.reason } : {});

const mustExist = (state: TaskState): void => {
  if (state.status === 'absent') throw new NotFoundError('task', state.taskId);
};

const mustBeLive = (state: TaskState, action: string): void => {
  mustExist(state);
  if (state.status === 'deleted') {
    throw new IllegalStateError(`cannot ${action} task '${state.taskId}': it is deleted (restore it first)`, {
      taskId: state.taskId,
      status: state.status,
    });
  }
};

/**
 * Prefixes the ownership claim when the lease is newer than the one recorded, so the claim and the
 * decisions it enables are appended atomically at one expected revision. A lease older than the
 * recorded one means another node has taken the task over: this node must stop.
 */
const withClaim = (state: TaskState, lease: Lease, now: number, events: TaskEvent[]): TaskEvent[] => {
  // The floor outlives a release: once an epoch is recorded, no older lease may act again.
  if (lease.epoch < state.epochFloor) throw new FencedError(state.taskId, lease.epoch, state.epochFloor);
  if (events.length === 0 || state.owner?.epoch === lease.epoch) return events;
  // After a graceful release the next owner takes over from the releaser: a hand-off, not a first start.
  const recorded = state.owner ?? state.releasedBy;
  const at = toIso(now);
  const claim: TaskEvent = recorded
    ? {
        type: 'TaskReassigned',
        data: {
          v: 1,
          taskId: state.taskId,
          node: lease.node,
          epoch: lease.epoch,
          previousNode: recorded.node,
          previousEpoch: recorded.epoch,
          reason: lease.reason ?? (state.owner ? 'recovered' : 'drain'),
          at,
        },
      }
    : {
        type: 'TaskAssigned',
        data: { v: 1, taskId: state.taskId, node: lease.node, epoch: lease.epoch, reason: lease.reason ?? 'start', at },
      };
  return [claim, ...events];
};

const firedEvent = (
  state: TaskState,
  fireId: string,
  scheduledAt: number,
  now: number,
  trigger: TaskEventData<'TaskFired'>['trigger'],
  attempt: number,
  lease: Lease,
): TaskEvent => ({
  type: 'TaskFired',
  data: {
    v: 1,
    taskId: state.taskId,
    fireId,
    scheduledAt: toIso(scheduledAt),
    firedAt: toIso(now),
    node: lease.node,
    epoch: lease.epoch,
    attempt,
    trigger,
    deadline: toIso(now + (state.spec?.timeout ?? 0)),
  },
});

/** Delay before attempt `attempt + 1`: exponential, capped, with a jitter that is stable for a given fire. */
export const retryDelay = (spec: TaskSpec, fireId: string, attempt: number): number => {
  const { initial, max, multiplier, jitter } = spec.retry.backoff;
  const base = Math.min(max, initial * multiplier ** (attempt - 1));
  return Math.round(base * (1 - jitter * unitHash(`${fireId}#${attempt}`)));
};

const failedEvent = (
  state: TaskState,
  fire: InFlightFire,
  at: number,
  reason: TaskEventData<'TaskFailed'>['reason'],
  message: string,
  details: TaskEventData<'TaskFailed'>['details'] = [],
): TaskEvent => {
  const spec = state.spec;
  const retries =
    reason !== 'cancelled' && state.status !== 'deleted' && spec !== null && fire.attempt < spec.retry.maxAttempts;
  return {
    type: 'TaskFailed',
    data: {
      v: 1,
      taskId: state.taskId,
      fireId: fire.fireId,
      attempt: fire.attempt,
      at: toIso(at),
      reason,
      message,
      durationMs: Math.max(0, at - fire.firedAt),
      ...(retries ? { willRetryAt: toIso(at + retryDelay(spec, fire.fireId, fire.attempt)) } : {}),
      details,
    },
  };
};

const recordOutcome = (state: TaskState, outcome: OutcomeReport): TaskEvent[] => {
  const fire = state.inFlight.find(
    (f) => f.fireId === outcome.fireId && f.attempt === outcome.attempt && f.deadline !== null,
  );
  // An outcome for an attempt already timed out, cancelled or reported is stale: the record keeps the
  // first. One that arrives after the deadline is the timeout's to record, whichever is decided first.
  if (!fire || fire.deadline === null || outcome.at > fire.deadline) return [];
  if (outcome.status === 'succeeded') {
    return [
      {
        type: 'TaskSucceeded',
        data: {
          v: 1,
          taskId: state.taskId,
          fireId: fire.fireId,
          attempt: fire.attempt,
          at: toIso(outcome.at),
          durationMs: Math.max(0, outcome.at - fire.firedAt),
          details: outcome.details ?? [],
        },
      },
    ];
  }
  return [failedEvent(state, fire, outcome.at, 'error', outcome.message ?? 'failed', outcome.details ?? [])];
};

/** The schedule as it stands: `delayAfter` counts from the later of the last completion and the last restart. */
export const scheduleOfState = (state: TaskState): Schedule | null => {
  const spec = state.spec;
  if (!spec) return null;
  const anchor = 'delayAfter' in spec.schedule ? Math.max(state.lastCompletedAt ?? 0, state.restartedAt) : state.anchor;
  const known = schedules.get(spec.schedule);
  if (known?.anchor === anchor) return known.schedule;
  const schedule = scheduleOf(spec.schedule, anchor);
  schedules.set(spec.schedule, { anchor, schedule });
  return schedule;
};

/**
 * The schedule last built for a spec's schedule object, by anchor. A schedule is a pure function of
 * the two, and a task's spec object lives on from event to event: building it anew on every decision
 * and every re-arm cost ~1.5 µs of a fire's work at 10,000 fires/s.
 */
const schedules = new WeakMap<TaskSpec['schedule'], { anchor: number; schedule: Schedule }>();

/** Offset of a tick's fire within the schedule's jitter, stable for that tick on every node. */
export const jitterOf = (state: TaskState, tick: number): number => {
  const jitter = state.spec?.schedule.jitter;
  return jitter ? Math.floor(unitHash(fireIdOf(state.taskId, tick)) * jitter) : 0;
};

const runsLeft = (state: TaskState): number => {
  const max = state.spec && 'maxRuns' in state.spec.schedule ? state.spec.schedule.maxRuns : undefined;
  return max === undefined ? Number.POSITIVE_INFINITY : Math.max(0, max - state.runs);
};

/**
 * Time passed: timeouts first (they may free the overlap slot), then scheduled ticks, then retries (so
 * cancel-previous can abandon a fire whose retry falls due in the same instant).
 */
const advance = (initial: TaskState, now: number, lease: Lease, overloaded: boolean): Folded => {
  const out: TaskEvent[] = [];
  let state = initial;
  const emit = (e: TaskEvent): void => {
    out.push(e);
    state = evolve(state, e);
  };

  for (const fire of initial.inFlight) {
    if (fire.deadline !== null && fire.deadline <= now) {
      emit(failedEvent(state, fire, now, 'timeout', `no outcome within ${state.spec?.timeout ?? 0}ms`));
    }
  }
  if (state.status !== 'active' || !state.spec) return { events: out, state };

  // Ticks before retries: cancel-previous may abandon a fire whose retry is due in the same instant.
  const due = ticksDue(state, now, lease, overloaded);
  out.push(...due.events);
  state = due.state;
  for (const fire of state.inFlight) {
    if (fire.retryAt !== null && fire.retryAt <= now) {
      emit(firedEvent(state, fire.fireId, fire.scheduledAt, now, 'retry', fire.attempt + 1, lease));
    }
  }
  return { events: out, state };
};

/** Due ticks through the misfire policy (which ticks to fire), then the overlap policy (whether to fire now). */
const ticksDue = (state: TaskState, now: number, lease: Lease, overloaded: boolean): Folded => {
  const spec = state.spec as TaskSpec;
  const running = isRunning(state);
  const none: Folded = { events: [], state };
  // While a run lasts, delayAfter has no next tick and buffer-all lets ticks pile up for the completion.
  if (running && ('delayAfter' in spec.schedule || spec.overlap === 'buffer-all')) return none;
  const left = runsLeft(state);
  const schedule = scheduleOfState(state);
  if (!schedule || left === 0) return none;
  if (running && spec.overlap === 'buffer-one') return folded(state, displaceBuffered(state, schedule, now));
  const buffered = firstBuffered(state, schedule, now, lease);
  if (buffered) return folded(state, buffered);

  const { policy, catchUpWindow, maxCatchUp, threshold } = spec.misfire;
  const limit = policy === 'fire-all' ? maxCatchUp : 1;
  let due = schedule.latest(state.cursor, now, limit);
  const newest = due.ticks.at(-1);
  if (newest !== undefined && newest + jitterOf(state, newest) > now)
    due = schedule.latest(state.cursor, newest - 1, limit);
  const ticks = due.ticks;
  const latest = ticks.at(-1);
  if (latest === undefined) return none;

  const out: TaskEvent[] = [];
  const at = toIso(now);
  const misfired = (until: number, count: number | null, action: 'coalesced' | 'dropped'): void => {
    if (until <= state.cursor || count === 0) return;
    out.push({
      type: 'TaskMisfired',
      data: {
        v: 1,
        taskId: state.taskId,
        after: toIso(state.cursor),
        until: toIso(until),
        count,
        action,
        policy,
        at,
        ...(overloaded ? { cause: 'overload' as const } : {}),
      },
    });
  };
  // A tick is due at its jittered instant: lateness and the catch-up window count from there.
  const windowStart = catchUpWindow === undefined ? Number.NEGATIVE_INFINITY : now - catchUpWindow;
  const dueAt = (t: number): number => t + jitterOf(state, t);
  const isLate = (t: number): boolean => now - dueAt(t) > threshold;
  const older = (kept: number): number | null => (due.total === null ? null : due.total - kept);

  let candidates: number[];
  if (policy === 'fire-all') {
    candidates = ticks.filter((t) => dueAt(t) >= windowStart);
    const first = candidates[0];
    if (first === undefined) misfired(latest, due.total, 'dropped');
    else misfired(first - 1, older(candidates.length), 'dropped');
  } else if (dueAt(latest) < windowStart || (policy === 'skip' && isLate(latest))) {
    candidates = [];
    misfired(latest, due.total, 'dropped');
  } else {
    candidates = [latest];
    misfired(latest - 1, older(1), policy === 'fire-once' ? 'coalesced' : 'dropped');
  }
  candidates = candidates.slice(0, left);

  // Overlap: decide against the state as it will be once the events so far are applied.
  let s = out.reduce(evolve, state);
  const skipped: number[] = [];
  const flushSkipped = (): void => {
    const last = skipped.at(-1);
    if (last === undefined) return;
    const e: TaskEvent = {
      type: 'TaskSkipped',
      data: {
        v: 1,
        taskId: s.taskId,
        after: toIso(s.cursor),
        until: toIso(last),
        count: skipped.length,
        policy: overlapSkipPolicy(spec),
        at,
      },
    };
    out.push(e);
    s = evolve(s, e);
    skipped.length = 0;
  };
  const fire = (t: number): void => {
    const e = firedEvent(s, fireIdOf(s.taskId, t), t, now, isLate(t) ? 'catch-up' : 'schedule', 1, lease);
    out.push(e);
    s = evolve(s, e);
  };

  for (const [i, t] of candidates.entries()) {
    if (!isRunning(s) || spec.overlap === 'allow') {
      fire(t);
      continue;
    }
    if (spec.overlap === 'cancel-previous') {
      for (const f of s.inFlight) {
        const e = failedEvent(
          s,
          f,
          now,
          'cancelled',
          `cancelled by the fire of ${toIso(t)} (overlap: cancel-previous)`,
        );
        out.push(e);
        s = evolve(s, e);
      }
      fire(t);
    } else if (spec.overlap === 'skip' || (spec.overlap === 'buffer-one' && i < candidates.length - 1)) {
      skipped.push(t);
    } else {
      // buffer-one keeps the newest tick pending, buffer-all the rest: they fire as the run completes.
      break;
    }
  }
  flushSkipped();
  return { events: out, state: s };
};

/**
 * Ticks that fell due while the previous run lasted were kept by the buffer policy, not missed: at
 * completion they fire whatever the misfire policy (buffer-all: the oldest first, one per completion,
 * at most `maxCatchUp` kept; buffer-one: the newest). Null when there are none.
 */
const firstBuffered = (state: TaskState, schedule: Schedule, now: number, lease: Lease): TaskEvent[] | null => {
  const spec = state.spec as TaskSpec;
  const completed = state.lastCompletedAt;
  if (
    (spec.overlap !== 'buffer-one' && spec.overlap !== 'buffer-all') ||
    completed === null ||
    completed <= state.cursor
  )
    return null;
  const keep = spec.overlap === 'buffer-one' ? 1 : spec.misfire.maxCatchUp;
  const { ticks, total } = schedule.latest(state.cursor, Math.min(completed, now), keep);
  const first = ticks[0];
  if (first === undefined) return null;
  const out: TaskEvent[] = [];
  if (total === null || total > ticks.length) {
    out.push({
      type: 'TaskSkipped',
      data: {
        v: 1,
        taskId: state.taskId,
        after: toIso(state.cursor),
        until: toIso(first - 1),
        count: total === null ? null : total - ticks.length,
        policy: spec.overlap,
        at: toIso(now),
      },
    });
  }
  const late = now - first - jitterOf(state, first) > spec.misfire.threshold;
  out.push(firedEvent(state, fireIdOf(state.taskId, first), first, now, late ? 'catch-up' : 'schedule', 1, lease));
  return out;
};

/** buffer-one keeps only the newest tick pending while a run lasts; the ones it displaces are skipped. */
const displaceBuffered = (state: TaskState, schedule: Schedule, now: number): TaskEvent[] => {
  const { ticks, total } = schedule.latest(state.cursor, now, 1);
  const newest = ticks[0];
  if (newest === undefined || total === 1) return [];
  return [
    {
      type: 'TaskSkipped',
      data: {
        v: 1,
        taskId: state.taskId,
        after: toIso(state.cursor),
        until: toIso(newest - 1),
        count: total === null ? null : total - 1,
        policy: 'buffer-one',
        at: toIso(now),
      },
    },
  ];
};

const overlapSkipPolicy = (spec: TaskSpec): 'skip' | 'buffer-one' | 'buffer-all' =>
  spec.overlap === 'buffer-one' || spec.overlap === 'buffer-all' ? spec.overlap : 'skip';

/**
 * When the runtime must next call `Advance` for this task: the earliest of attempt deadlines, retries
 * and the next tick (with its jitter). Null when nothing is pending. Pure: the node's timer queue keeps
 * only this number.
 */
export const nextWakeAt = (state: TaskState): number | null => {
  let wake = Number.POSITIVE_INFINITY;
  for (const f of state.inFlight) {
    if (f.deadline !== null) wake = Math.min(wake, f.deadline);
    if (f.retryAt !== null && state.status === 'active') wake = Math.min(wake, f.retryAt);
  }
  const tick = nextTickAt(state);
  if (tick !== null) wake = Math.min(wake, tick + jitterOf(state, tick));
  return wake === Number.POSITIVE_INFINITY ? null : wake;
};

/** The next scheduled tick this task will act on, or null (paused, finished, waiting for a run to end). */
export const nextTickAt = (state: TaskState): number | null => {
  const spec = state.spec;
  if (state.status !== 'active' || !spec || runsLeft(state) === 0) return null;
  const running = isRunning(state);
  if (running && ('delayAfter' in spec.schedule || spec.overlap === 'buffer-all')) return null;
  const schedule = scheduleOfState(state);
  if (!schedule) return null;
  const next = schedule.next(state.cursor);
  // While one tick waits under buffer-one, only the tick after it changes anything (it displaces it).
  if (running && spec.overlap === 'buffer-one' && next !== null) return schedule.next(next);
  return next;
};
