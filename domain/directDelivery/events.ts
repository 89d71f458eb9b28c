import { z } from 'zod';
import { TopicTarget } from '../task/spec.js';
import { Trigger } from '../task/events.js';

/**
 * Topic fires delivered through the log itself, for subscribers in direct mode (docs/subscribers.md):
 * they read fires from the event store as competing consumers of a persistent subscription and write
 * their outcomes back to it, so no scheduler node needs to be reachable from them.
 *
 *   kairos-direct-groups     DirectGroupDeclared / DirectGroupRetired: which groups expect which topics
 *   kairos-fires-<topic>     FirePublished: one attempt of a fire, written by the node that fired it
 *   kairos-outcomes-<topic>  FireHandled: one group's outcome of an attempt, written by its consumer
 *
 * The node that fired the task turns the outcomes into `TaskSucceeded`/`TaskFailed` in the task stream.
 */

const Iso = z.iso.datetime({ offset: true });
const required = (what: string) => ({
  error: (issue: { input: unknown }) => (issue.input === undefined ? 'is required' : `must be ${what}`),
});

export const TopicName = TopicTarget.shape.topic;
export const GroupName = z
  .string(required('a string'))
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1-128 letters, digits, ".", "_", ":" or "-"');
export const ConsumerId = z
  .string(required('a string'))
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$/, 'must be 1-200 letters, digits, ".", "_", ":", "@" or "-"');

const event = <T extends string, D extends z.ZodRawShape>(type: T, data: D) =>
  z.object({ type: z.literal(type), data: z.object({ v: z.literal(1), ...data }) });

/** From now on, fires of `topic` wait for an outcome from `group` (until it is retired). */
export const DirectGroupDeclared = event('DirectGroupDeclared', {
  group: GroupName,
  topic: TopicName,
  consumer: ConsumerId,
  at: Iso,
});
export const DirectGroupRetired = event('DirectGroupRetired', {
  group: GroupName,
  topic: TopicName,
  consumer: ConsumerId.optional(),
  at: Iso,
});
export const DirectGroupEvent = z.discriminatedUnion('type', [DirectGroupDeclared, DirectGroupRetired]);
export type DirectGroupEvent = z.output<typeof DirectGroupEvent>;

/** The fields a subscriber's handler sees, the same in direct and in connected mode. */
export const FirePublished = event('FirePublished', {
  fireId: z.uuid(),
  attempt: z.number().int().positive(),
  taskId: z.string().min(1),
  taskName: z.string().optional(),
  topic: TopicName,
  scheduledAt: Iso,
  firedAt: Iso,
  trigger: z.enum(Trigger),
  payload: z.unknown(),
  /** Epoch ms after which the attempt counts as timed out whatever the consumer does. */
  deadline: z.number(),
  /** The node that fired it, and the direct groups it expected an outcome from. */
  node: z.string().min(1),
  groups: z.array(GroupName),
});
export type FirePublished = z.output<typeof FirePublished>;

export const FireHandled = event('FireHandled', {
  fireId: z.uuid(),
  attempt: z.number().int().positive(),
  taskId: z.string().min(1),
  group: GroupName,
  consumer: ConsumerId,
  status: z.enum(['succeeded', 'failed']),
  // A handler's error text can be a whole stack; history needs one line, so long text is cut, not refused.
  message: z
    .string()
    .transform((m) => m.slice(0, 1000))
    .optional(),
  at: Iso,
});
export type FireHandled = z.output<typeof FireHandled>;

export const DIRECT_GROUPS_STREAM = 'kairos-direct-groups';
export const FIRES_STREAM_PREFIX = 'kairos-fires-';
export const OUTCOMES_STREAM_PREFIX = 'kairos-outcomes-';
export const firesStreamOf = (topic: string): string => `${FIRES_STREAM_PREFIX}${topic}`;
export const outcomesStreamOf = (topic: string): string => `${OUTCOMES_STREAM_PREFIX}${topic}`;

/**
 * A server-side stream-name filter matching exactly the fires stream of `topic`: a prefix would also
 * match longer topic names. Topic names may hold `.`, the one regex metacharacter they allow.
 */
export const firesStreamPattern = (topic: string): string => `^${firesStreamOf(topic).replaceAll('.', '\\.')}$`;

/**
 * The persistent subscription of one group to one topic. `~` is in neither name, so names never collide,
 * and it needs no escaping in a URL (EventStoreDB's UI puts group names in its routes).
 */
export const persistentGroupNameOf = (group: string, topic: string): string => `kairos~${group}~${topic}`;
