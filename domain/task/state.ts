import { stateOfCapture } from './capture.js';
import type { TaskEvent, Trigger } from './events.js';
import type { TaskSpec } from './spec.js';
import { toMillis } from '../time/instant.js';

/**
 * What a task is, folded from its stream. Plain data (no classes, no functions) so it can be an XState
 * context, a node's record, or a projection row. Times are epoch ms.
 */
export type TaskStatus = 'absent' | 'active' | 'paused' | 'deleted';

/** An attempt of a fire that has no final outcome yet. */
export type InFlightFire = {
  fireId: string;
  scheduledAt: number;
  trigger: Trigger;
  attempt: number;
  firedAt: number;
  /** No outcome by then → the attempt has timed out. Null while waiting for a retry. */
  deadline: number | null;
  /** Set between a failed attempt and its retry. */
  retryAt: number | null;
};

export type TaskOutcome = { fireId: string; status: 'succeeded' | 'failed'; at: number; message?: string };

export type TaskState = {
  taskId: string;
  status: TaskStatus;
  /** Status to return to when a deleted task is restored. */
  statusBeforeDelete: 'active' | 'paused';
  spec: TaskSpec | null;
  /** Where the tick grid of `every` is anchored (its `startAt`, or when the schedule was set). */
  anchor: number;
  /**
   * When the schedule last (re)started without a completion: creation, a schedule change, resume,
   * restore, a dropped tick. `delayAfter` counts from the later of this and the last completion.
   */
  restartedAt: number;
  /** Every scheduled tick at or before this instant has been handled (fired, skipped or misfired). */
  cursor: number;
  /** Scheduled fires so far (for `maxRuns`; manual fires and retries do not count). */
  runs: number;
  owner: { node: string; epoch: number } | null;
  /** The owner that released the task (graceful hand-off), until the next one claims it. */
  releasedBy: { node: string; epoch: number } | null;
  /** The highest epoch ever recorded, released or not: a lease below it is stale (fencing). */
  epochFloor: number;
  /** Manual fires so far: part of a manual fire's id, so two triggers in one millisecond are two fires. */
  manualFires: number;
  inFlight: InFlightFire[];
  /** When the last fire reached its final outcome: the base of `delayAfter`. */
  lastCompletedAt: number | null;
  lastFire: { fireId: string; scheduledAt: number; firedAt: number; trigger: Trigger } | null;
  lastOutcome: TaskOutcome | null;
  /** Consecutive fires whose final outcome was a failure. */
  failureStreak: number;
};

export const initialTaskState = (taskId: string): TaskState => ({
  taskId,
  status: 'absent',
  statusBeforeDelete: 'active',
  spec: null,
  anchor: 0,
  restartedAt: 0,
  cursor: 0,
  runs: 0,
  owner: null,
  releasedBy: null,
  epochFloor: 0,
  manualFires: 0,
  inFlight: [],
  lastCompletedAt: null,
  lastFire: null,
  lastOutcome: null,
  failureStreak: 0,
});

/**
 * The state with some fields changed: a copy written out as one literal of the state's shape, then
 * the changes set on it. V8 builds a spread (`{ ...state, runs }`) property by property — several
 * times slower, and a node, a replay and every rebuild fold each fire through here.
 */
const withChanges = (s: TaskState, changes: Partial<TaskState>): TaskState =>
  Object.assign(
    {
      taskId: s.taskId,
      status: s.status,
      statusBeforeDelete: s.statusBeforeDelete,
      spec: s.spec,
      anchor: s.anchor,
      restartedAt: s.restartedAt,
      cursor: s.cursor,
      runs: s.runs,
      owner: s.owner,
      releasedBy: s.releasedBy,
      epochFloor: s.epochFloor,
      manualFires: s.manualFires,
      inFlight: s.inFlight,
      lastCompletedAt: s.lastCompletedAt,
      lastFire: s.lastFire,
      lastOutcome: s.lastOutcome,
      failureStreak: s.failureStreak,
    },
    changes,
  );

/** The anchor of `every` is its `startAt` when given, so ticks fall on startAt + k·period. */
const anchorOf = (spec: TaskSpec, at: number): number =>
  'startAt' in spec.schedule && spec.schedule.startAt ? toMillis(spec.schedule.startAt) : at;

/** The parts of a schedule that place its ticks; end, run limit and jitter only filter or shift them. */
const gridOf = (schedule: TaskSpec['schedule']): string => {
  const { endAt: _endAt, maxRuns: _maxRuns, jitter: _jitter, ...grid } = schedule as Record<string, unknown>;
  return JSON.stringify(grid);
};

/** A one-shot at or before the cursor was already handled; one in the past but after it counts as missed. */
const cursorFor = (spec: TaskSpec, at: number, cursor: number): number =>
  'at' in spec.schedule ? Math.max(cursor, Math.min(at, toMillis(spec.schedule.at) - 1)) : Math.max(cursor, at);

const withoutFire = (inFlight: InFlightFire[], fireId: string): InFlightFire[] =>
  inFlight.filter((f) => f.fireId !== fireId);

/** Pure: applies one recorded event. Unknown combinations (an outcome for a fire not in flight) change nothing. */
export const evolve = (state: TaskState, event: TaskEvent): TaskState => {
  switch (event.type) {
    case 'TaskCreated': {
      const at = toMillis(event.data.at);
      const spec = event.data.spec;
      // A one-shot in the past is handled as a missed tick, by the misfire policy.
      return withChanges(state, {
        status: 'active',
        spec,
        anchor: anchorOf(spec, at),
        restartedAt: at,
        cursor: cursorFor(spec, at, 0),
      });
    }
    case 'TaskUpdated': {
      const at = toMillis(event.data.at);
      const prev = state.spec;
      const spec = event.data.spec;
      // A new tick grid starts from the change (its earlier ticks were never due) and counts its runs
      // afresh; the cursor never moves back, so no tick already handled is handled again.
      if (prev && gridOf(prev.schedule) === gridOf(spec.schedule)) return withChanges(state, { spec });
      return withChanges(state, {
        spec,
        anchor: anchorOf(spec, at),
        restartedAt: at,
        cursor: cursorFor(spec, at, state.cursor),
        runs: 0,
      });
    }
    case 'TaskPaused':
      return withChanges(state, { status: 'paused' });
    case 'TaskResumed': {
      // Ticks during a pause are not missed: the operator chose not to run them.
      const at = toMillis(event.data.at);
      return withChanges(state, { status: 'active', cursor: Math.max(state.cursor, at), restartedAt: at });
    }
    case 'TaskDeleted':
      return withChanges(state, {
        status: 'deleted',
        statusBeforeDelete: state.status === 'paused' ? 'paused' : 'active',
      });
    case 'TaskRestored': {
      const at = toMillis(event.data.at);
      return withChanges(state, {
        status: state.statusBeforeDelete,
        cursor: Math.max(state.cursor, at),
        restartedAt: at,
      });
    }
    case 'TaskAssigned':
    case 'TaskReassigned':
      return withChanges(state, {
        owner: { node: event.data.node, epoch: event.data.epoch },
        releasedBy: null,
        epochFloor: Math.max(state.epochFloor, event.data.epoch),
      });
    case 'TaskReleased':
      return state.owner && state.owner.epoch === event.data.epoch
        ? withChanges(state, { owner: null, releasedBy: state.owner })
        : state;
    case 'TaskFired': {
      const d = event.data;
      const scheduledAt = toMillis(d.scheduledAt);
      const firedAt = toMillis(d.firedAt);
      const previous = state.inFlight.find((f) => f.fireId === d.fireId);
      const fire: InFlightFire = {
        fireId: d.fireId,
        scheduledAt,
        trigger: previous?.trigger ?? d.trigger,
        attempt: d.attempt,
        firedAt,
        deadline: toMillis(d.deadline),
        retryAt: null,
      };
      const scheduled = d.trigger === 'schedule' || d.trigger === 'catch-up';
      return withChanges(state, {
        epochFloor: Math.max(state.epochFloor, d.epoch),
        manualFires: d.trigger === 'manual' && d.attempt === 1 ? state.manualFires + 1 : state.manualFires,
        inFlight: [...withoutFire(state.inFlight, d.fireId), fire],
        cursor: scheduled ? Math.max(state.cursor, scheduledAt) : state.cursor,
        runs: scheduled ? state.runs + 1 : state.runs,
        lastFire: d.attempt === 1 ? { fireId: d.fireId, scheduledAt, firedAt, trigger: d.trigger } : state.lastFire,
      });
    }
    case 'TaskSucceeded': {
      const d = event.data;
      if (!state.inFlight.some((f) => f.fireId === d.fireId && f.attempt === d.attempt)) return state;
      const at = toMillis(d.at);
      return withChanges(state, {
        inFlight: withoutFire(state.inFlight, d.fireId),
        lastCompletedAt: at,
        lastOutcome: { fireId: d.fireId, status: 'succeeded', at },
        failureStreak: 0,
      });
    }
    case 'TaskFailed': {
      const d = event.data;
      const fire = state.inFlight.find((f) => f.fireId === d.fireId && f.attempt === d.attempt);
      if (!fire) return state;
      const at = toMillis(d.at);
      if (d.willRetryAt !== undefined) {
        const waiting: InFlightFire = { ...fire, deadline: null, retryAt: toMillis(d.willRetryAt) };
        return withChanges(state, { inFlight: state.inFlight.map((f) => (f === fire ? waiting : f)) });
      }
      return withChanges(state, {
        inFlight: withoutFire(state.inFlight, d.fireId),
        lastCompletedAt: at,
        lastOutcome: { fireId: d.fireId, status: 'failed', at, message: d.message },
        failureStreak: state.failureStreak + 1,
      });
    }
    case 'TaskSkipped':
      return withChanges(state, { cursor: Math.max(state.cursor, toMillis(event.data.until)) });
    case 'TaskMisfired': {
      const cursor = Math.max(state.cursor, toMillis(event.data.until));
      // A dropped delayAfter tick must not end the task: the delay counts again from the drop.
      return event.data.action === 'dropped'
        ? withChanges(state, { cursor, restartedAt: toMillis(event.data.at) })
        : withChanges(state, { cursor });
    }
    case 'TaskStateCaptured':
      // The capture is the state folded from every event before it, which retention may have removed.
      return stateOfCapture(state.taskId, event.data.state);
  }
};

export const foldTask = (taskId: string, events: Iterable<TaskEvent>): TaskState => {
  let state = initialTaskState(taskId);
  for (const e of events) state = evolve(state, e);
  return state;
};

/** A fire is "running" while any attempt of it awaits an outcome or a retry: overlap policies look at this. */
export const isRunning = (state: TaskState): boolean => state.inFlight.length > 0;
