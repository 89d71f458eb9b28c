import { z } from 'zod';
import { MisfirePolicy, TaskSpec } from './spec.js';

/**
 * Every fact of a task's life, one stream per task (`kairos-task-<taskId>`). Each event's `data`
 * carries a version `v`; a new shape gets a new version and an upcaster, never an edit in place.
 * Times are ISO-8601 UTC text, so the log reads well in `kairos events`.
 */

const Iso = z.iso.datetime({ offset: true });
const taskId = z.string().min(1);
const node = z.string().min(1);
const epoch = z.number().int().nonnegative();
const fireId = z.uuid();

export const Trigger = { schedule: 'schedule', manual: 'manual', catchUp: 'catch-up', retry: 'retry' } as const;
export type Trigger = (typeof Trigger)[keyof typeof Trigger];

export const FailureReason = { error: 'error', timeout: 'timeout', cancelled: 'cancelled' } as const;
export type FailureReason = (typeof FailureReason)[keyof typeof FailureReason];

const event = <T extends string, D extends z.ZodRawShape>(type: T, data: D) =>
  z.object({ type: z.literal(type), data: z.object({ v: z.literal(1), taskId, ...data }) });

/** Why an operator made a change, as they said it (`--reason`); optional on every operator action. */
const reason = z.string().optional();

export const TaskCreated = event('TaskCreated', { spec: TaskSpec, at: Iso, reason });
export const TaskUpdated = event('TaskUpdated', { spec: TaskSpec, at: Iso, reason });
export const TaskPaused = event('TaskPaused', { at: Iso, reason });
export const TaskResumed = event('TaskResumed', { at: Iso, reason });
export const TaskDeleted = event('TaskDeleted', { at: Iso, reason });
export const TaskRestored = event('TaskRestored', { at: Iso, reason });

const ownershipReason = z.enum(['start', 'node-lost', 'rebalance', 'drain', 'session-lost', 'recovered']);
export const TaskAssigned = event('TaskAssigned', { node, epoch, reason: ownershipReason, at: Iso });
export const TaskReassigned = event('TaskReassigned', {
  node,
  epoch,
  previousNode: node,
  previousEpoch: epoch,
  reason: ownershipReason,
  at: Iso,
});
export const TaskReleased = event('TaskReleased', { node, epoch, reason: z.string(), at: Iso });

export const TaskFired = event('TaskFired', {
  fireId,
  scheduledAt: Iso,
  firedAt: Iso,
  node,
  epoch,
  attempt: z.number().int().positive(),
  trigger: z.enum(Trigger),
  /** When the attempt counts as timed out if no outcome arrived. */
  deadline: Iso,
  /** Why an operator fired it (manual fires only). */
  reason,
});

/** Per-consumer-group outcome of a topic fire, or the HTTP response of a webhook fire. */
const outcomeDetail = z.object({
  group: z.string().optional(),
  consumer: z.string().optional(),
  status: z.enum(['succeeded', 'failed']),
  message: z.string().optional(),
  httpStatus: z.number().int().optional(),
});

export const TaskSucceeded = event('TaskSucceeded', {
  fireId,
  attempt: z.number().int().positive(),
  at: Iso,
  durationMs: z.number().nonnegative(),
  details: z.array(outcomeDetail).default([]),
});
export const TaskFailed = event('TaskFailed', {
  fireId,
  attempt: z.number().int().positive(),
  at: Iso,
  reason: z.enum(FailureReason),
  message: z.string(),
  durationMs: z.number().nonnegative(),
  /** Present when another attempt follows; absent when this failure is final. */
  willRetryAt: Iso.optional(),
  details: z.array(outcomeDetail).default([]),
});

/**
 * Ticks in `(after, until]` that were not fired because the previous fire had no outcome yet
 * (overlap policy). `count` is how many ticks the schedule had in that interval (null: too many to count cheaply).
 */
export const TaskSkipped = event('TaskSkipped', {
  after: Iso,
  until: Iso,
  count: z.number().int().positive().nullable(),
  policy: z.enum(['skip', 'buffer-one', 'buffer-all']),
  at: Iso,
});

/**
 * Ticks in `(after, until]` that were handled by the misfire policy instead of firing on time:
 * `coalesced` into the catch-up fire of `until` (fire-once), or `dropped` (skip policy, outside the
 * catch-up window, or beyond `maxCatchUp`). `count` is null when the interval held too many ticks to
 * count cheaply.
 */
export const TaskMisfired = event('TaskMisfired', {
  after: Iso,
  until: Iso,
  count: z.number().int().nonnegative().nullable(),
  action: z.enum(['coalesced', 'dropped']),
  policy: z.enum(MisfirePolicy),
  at: Iso,
  /** Why the ticks were late, when the node knows: `overload` — it was due but waited behind more work than the node could do. */
  cause: z.enum(['overload']).optional(),
});

const revision = z.number().int().nonnegative();
const holder = z.object({ node, epoch }).nullable();

/** A task's state (see `TaskState` in state.ts) with its instants as ISO text, as a capture records it. */
export const CapturedState = z.object({
  status: z.enum(['absent', 'active', 'paused', 'deleted']),
  statusBeforeDelete: z.enum(['active', 'paused']),
  spec: TaskSpec.nullable(),
  anchor: Iso,
  restartedAt: Iso,
  cursor: Iso,
  runs: z.number().int().nonnegative(),
  owner: holder,
  releasedBy: holder,
  epochFloor: epoch,
  manualFires: z.number().int().nonnegative(),
  inFlight: z.array(
    z.object({
      fireId,
      scheduledAt: Iso,
      trigger: z.enum(Trigger),
      attempt: z.number().int().positive(),
      firedAt: Iso,
      deadline: Iso.nullable(),
      retryAt: Iso.nullable(),
    }),
  ),
  lastCompletedAt: Iso.nullable(),
  lastFire: z.object({ fireId, scheduledAt: Iso, firedAt: Iso, trigger: z.enum(Trigger) }).nullable(),
  lastOutcome: z
    .object({ fireId, status: z.enum(['succeeded', 'failed']), at: Iso, message: z.string().optional() })
    .nullable(),
  failureStreak: z.number().int().nonnegative(),
});
export type CapturedState = z.output<typeof CapturedState>;

/** Who changed something, as the event's metadata said. */
const changedBy = { actor: z.string().min(1), correlationId: z.string().optional() };

/** One definition event, compactly: `spec` for `TaskCreated`/`TaskUpdated`, `reason` when one was given. */
export const DefinitionChange = z.object({
  revision,
  type: z.enum(['TaskCreated', 'TaskUpdated', 'TaskPaused', 'TaskResumed', 'TaskDeleted', 'TaskRestored']),
  at: Iso,
  ...changedBy,
  /** The node the change was made through. */
  node: z.string().optional(),
  spec: TaskSpec.optional(),
  reason: z.string().optional(),
});
export type DefinitionChange = z.output<typeof DefinitionChange>;

/** One ownership event, compactly: `previous*` for `TaskReassigned`. */
export const OwnershipChange = z.object({
  revision,
  type: z.enum(['TaskAssigned', 'TaskReassigned', 'TaskReleased']),
  node,
  epoch,
  previousNode: node.optional(),
  previousEpoch: epoch.optional(),
  reason: z.string(),
  at: Iso,
  ...changedBy,
});
export type OwnershipChange = z.output<typeof OwnershipChange>;

/**
 * Everything needed to go on without the events before it (retention, see docs/operations.md): the
 * task's state as folded up to the event before it (`evolve` replaces the state with it), and the
 * task's whole definition and ownership history up to there, so that truncating the stream before it
 * loses only execution events.
 */
export const TaskStateCaptured = event('TaskStateCaptured', {
  at: Iso,
  state: CapturedState,
  history: z.object({ definitions: z.array(DefinitionChange), ownership: z.array(OwnershipChange) }),
});

export const TaskEvent = z.discriminatedUnion('type', [
  TaskCreated,
  TaskUpdated,
  TaskPaused,
  TaskResumed,
  TaskDeleted,
  TaskRestored,
  TaskAssigned,
  TaskReassigned,
  TaskReleased,
  TaskFired,
  TaskSucceeded,
  TaskFailed,
  TaskSkipped,
  TaskMisfired,
  TaskStateCaptured,
]);
export type TaskEvent = z.output<typeof TaskEvent>;
export type TaskEventType = TaskEvent['type'];
export type TaskEventOf<T extends TaskEventType> = Extract<TaskEvent, { type: T }>;
export type TaskEventData<T extends TaskEventType> = TaskEventOf<T>['data'];

/** Who caused an event and in answer to what; stored beside every event. */
export const EventMetadata = z.object({
  actor: z.string().min(1),
  correlationId: z.string().optional(),
  causationId: z.string().optional(),
  /** The node that recorded an operator's change (where it was made); a node's own events name it as actor. */
  node: z.string().optional(),
});
export type EventMetadata = z.output<typeof EventMetadata>;

export const TASK_STREAM_PREFIX = 'kairos-task-';
export const CLUSTER_STREAM = 'kairos-cluster';
export const taskStreamOf = (id: string): string => `${TASK_STREAM_PREFIX}${id}`;
export const taskIdOfStream = (stream: string): string | undefined =>
  stream.startsWith(TASK_STREAM_PREFIX) ? stream.slice(TASK_STREAM_PREFIX.length) : undefined;
