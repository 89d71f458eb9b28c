import { toIso, toMillis } from '../time/instant.js';
import type {
  CapturedState,
  DefinitionChange,
  EventMetadata,
  OwnershipChange,
  TaskEvent,
  TaskEventData,
} from './events.js';
import { canonicalJson } from './spec.js';
import type { TaskState } from './state.js';

/**
 * The parts of a `TaskStateCaptured` (retention): the task's state in the event's ISO form and back,
 * and the definition and ownership history a capture carries so that truncating the stream before it
 * loses none of it.
 */

export type TaskHistory = { definitions: DefinitionChange[]; ownership: OwnershipChange[] };

export const emptyTaskHistory = (): TaskHistory => ({ definitions: [], ownership: [] });

const isoOrNull = (millis: number | null): string | null => (millis === null ? null : toIso(millis));
const millisOrNull = (iso: string | null): number | null => (iso === null ? null : toMillis(iso));

/** The state as a capture records it. Every instant of a state comes from an event's ISO text, so the round trip is exact. */
export const captureOf = (state: TaskState): CapturedState => ({
  status: state.status,
  statusBeforeDelete: state.statusBeforeDelete,
  spec: state.spec,
  anchor: toIso(state.anchor),
  restartedAt: toIso(state.restartedAt),
  cursor: toIso(state.cursor),
  runs: state.runs,
  owner: state.owner,
  releasedBy: state.releasedBy,
  epochFloor: state.epochFloor,
  manualFires: state.manualFires,
  inFlight: state.inFlight.map((f) => ({
    fireId: f.fireId,
    scheduledAt: toIso(f.scheduledAt),
    trigger: f.trigger,
    attempt: f.attempt,
    firedAt: toIso(f.firedAt),
    deadline: isoOrNull(f.deadline),
    retryAt: isoOrNull(f.retryAt),
  })),
  lastCompletedAt: isoOrNull(state.lastCompletedAt),
  lastFire: state.lastFire && {
    ...state.lastFire,
    scheduledAt: toIso(state.lastFire.scheduledAt),
    firedAt: toIso(state.lastFire.firedAt),
  },
  lastOutcome: state.lastOutcome && { ...state.lastOutcome, at: toIso(state.lastOutcome.at) },
  failureStreak: state.failureStreak,
});

/** The state a capture records, as `evolve` folds it. */
export const stateOfCapture = (taskId: string, c: CapturedState): TaskState => ({
  taskId,
  status: c.status,
  statusBeforeDelete: c.statusBeforeDelete,
  spec: c.spec,
  anchor: toMillis(c.anchor),
  restartedAt: toMillis(c.restartedAt),
  cursor: toMillis(c.cursor),
  runs: c.runs,
  owner: c.owner,
  releasedBy: c.releasedBy,
  epochFloor: c.epochFloor,
  manualFires: c.manualFires,
  inFlight: c.inFlight.map((f) => ({
    fireId: f.fireId,
    scheduledAt: toMillis(f.scheduledAt),
    trigger: f.trigger,
    attempt: f.attempt,
    firedAt: toMillis(f.firedAt),
    deadline: millisOrNull(f.deadline),
    retryAt: millisOrNull(f.retryAt),
  })),
  lastCompletedAt: millisOrNull(c.lastCompletedAt),
  lastFire: c.lastFire && {
    ...c.lastFire,
    scheduledAt: toMillis(c.lastFire.scheduledAt),
    firedAt: toMillis(c.lastFire.firedAt),
  },
  lastOutcome: c.lastOutcome && {
    fireId: c.lastOutcome.fireId,
    status: c.lastOutcome.status,
    at: toMillis(c.lastOutcome.at),
    ...(c.lastOutcome.message === undefined ? {} : { message: c.lastOutcome.message }),
  },
  failureStreak: c.failureStreak,
});

/** Whether a capture records exactly this state (for `kairos verify`, which can fold the events it summarises). */
export const capturesState = (captured: CapturedState, state: TaskState): boolean =>
  canonicalJson(captured) === canonicalJson(captureOf(state));

const changedBy = (metadata: EventMetadata) => ({
  actor: metadata.actor,
  ...(metadata.correlationId === undefined ? {} : { correlationId: metadata.correlationId }),
});

/** Where an operator's change was made: only definitions say it (an ownership change names its node already). */
const madeOn = (metadata: EventMetadata) => (metadata.node === undefined ? {} : { node: metadata.node });

const withReason = (data: { reason?: string }) => (data.reason === undefined ? {} : { reason: data.reason });

/**
 * Adds one recorded event to a task's history. A capture holds the whole history up to it, so it
 * replaces what was folded before; execution events add nothing. Mutates and returns `history`.
 */
export const foldTaskHistory = (
  history: TaskHistory,
  event: TaskEvent,
  revision: number,
  metadata: EventMetadata,
): TaskHistory => {
  const by = changedBy(metadata);
  switch (event.type) {
    case 'TaskCreated':
    case 'TaskUpdated':
      history.definitions.push({
        revision,
        type: event.type,
        at: event.data.at,
        ...by,
        ...madeOn(metadata),
        spec: event.data.spec,
        ...withReason(event.data),
      });
      return history;
    case 'TaskPaused':
    case 'TaskDeleted':
    case 'TaskResumed':
    case 'TaskRestored':
      history.definitions.push({
        revision,
        type: event.type,
        at: event.data.at,
        ...by,
        ...madeOn(metadata),
        ...withReason(event.data),
      });
      return history;
    case 'TaskAssigned':
    case 'TaskReleased':
      history.ownership.push(ownershipOf(event.type, event.data, revision, by));
      return history;
    case 'TaskReassigned':
      history.ownership.push({
        ...ownershipOf(event.type, event.data, revision, by),
        previousNode: event.data.previousNode,
        previousEpoch: event.data.previousEpoch,
      });
      return history;
    case 'TaskStateCaptured':
      history.definitions = [...event.data.history.definitions];
      history.ownership = [...event.data.history.ownership];
      return history;
    default:
      return history;
  }
};

const ownershipOf = (
  type: OwnershipChange['type'],
  data: TaskEventData<'TaskAssigned' | 'TaskReassigned' | 'TaskReleased'>,
  revision: number,
  by: ReturnType<typeof changedBy>,
): OwnershipChange => ({
  revision,
  type,
  node: data.node,
  epoch: data.epoch,
  reason: data.reason,
  at: data.at,
  ...by,
});
