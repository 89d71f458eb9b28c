import { z } from 'zod';
import { NodeId } from '../../../domain/cluster/members.js';
import { fieldIssuesOf } from '../../../domain/errors/index.js';
import { ConsumerId, GroupName, TopicName } from '../../../domain/directDelivery/events.js';
import { Trigger } from '../../../domain/task/events.js';
import { PACKED_FRAMES } from './frames.js';

/**
 * The wire protocol between a node's topic hub and subscribers, JSON objects in WebSocket text frames:
 * one per frame, or one per line of a frame for a peer that reads packed frames (`frames.ts`). Every message carries `v` (the protocol version) and `type`. A subscriber identifies itself in
 * the upgrade request (`GET /api/subscribe?group=..&topics=a,b&consumer=..`), so a bad subscription is
 * refused before any fire flows; after that:
 *
 *   server → client  welcome, fire, cancel, error
 *   client → server  ack (on receipt), outcome (when handled)
 *
 * Objects are parsed leniently (unknown keys dropped) so a newer peer may add fields within a version.
 */

export const PROTOCOL_VERSION = 1;

/** Close codes with a meaning for the SDK; 4400 and 4409 are fatal (reconnecting would not help). */
export const CloseCode = {
  shuttingDown: 1001,
  badSubscription: 4400,
  replaced: 4409,
} as const;

export const ProtocolErrorCode = {
  badJson: 'bad_json',
  badMessage: 'bad_message',
  badSubscription: 'bad_subscription',
} as const;
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

const required = (what: string) => ({
  error: (issue: { input: unknown }) => (issue.input === undefined ? 'is required' : `must be ${what}`),
});

const version = z.literal(PROTOCOL_VERSION, {
  error: `must be ${PROTOCOL_VERSION}, the protocol version this peer speaks`,
});

export { ConsumerId, GroupName, TopicName };
const DeliveryId = z
  .string(required('a string'))
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters');

/**
 * Query of the subscribe upgrade request; `topics` is comma-separated. `relay` names the node that
 * opened the connection on behalf of one of its own consumers (`consumerRelay.ts`): such a consumer is
 * never relayed onward.
 */
export const SubscribeQuery = z.object({
  group: GroupName,
  topics: z
    .string(required('a comma-separated list of topics'))
    .transform((text) => text.split(',').map((t) => t.trim()))
    .pipe(z.array(TopicName).min(1).max(100, 'must list at most 100 topics')),
  consumer: ConsumerId,
  relay: NodeId.optional(),
  /** `lines`: the subscriber reads packed frames (`frames.ts`). */
  frames: z.literal(PACKED_FRAMES, { error: `must be "${PACKED_FRAMES}" when given` }).optional(),
});
export type SubscribeQuery = z.output<typeof SubscribeQuery>;

// --- client → server -------------------------------------------------------------------------------

export const AckMessage = z.object({ v: version, type: z.literal('ack'), deliveryId: DeliveryId });
export const OutcomeMessage = z.object({
  v: version,
  type: z.literal('outcome'),
  deliveryId: DeliveryId,
  status: z.enum(['succeeded', 'failed'], { error: 'must be "succeeded" or "failed"' }),
  // A consumer's error text can be a whole stack; history needs one line, so long text is cut, not refused.
  message: z
    .string()
    .transform((m) => m.slice(0, 1000))
    .optional(),
});
export const ClientMessage = z.discriminatedUnion('type', [AckMessage, OutcomeMessage], {
  error: 'must be "ack" or "outcome"',
});
export type ClientMessage = z.output<typeof ClientMessage>;

// --- server → client -------------------------------------------------------------------------------

export const WelcomeMessage = z.object({
  v: version,
  type: z.literal('welcome'),
  node: z.string(),
  group: z.string(),
  consumerId: z.string(),
  topics: z.array(z.string()),
  /** The hub pings this often; a client that hears nothing for two intervals may assume the link dead. */
  heartbeatInterval: z.number(),
  ackTimeout: z.number(),
  /** `lines`: the hub reads packed frames (`frames.ts`); absent from hubs that read one message per frame. */
  frames: z.literal(PACKED_FRAMES).optional(),
});
export const FireMessage = z.object({
  v: version,
  type: z.literal('fire'),
  /** Names this hand-off of one attempt to one group; stable across redeliveries within the group. */
  deliveryId: z.string(),
  /** The idempotency key: the same fire may arrive more than once. */
  fireId: z.string(),
  attempt: z.number().int().positive(),
  taskId: z.string(),
  taskName: z.string().optional(),
  topic: z.string(),
  scheduledAt: z.string(),
  firedAt: z.string(),
  trigger: z.enum(Trigger),
  payload: z.unknown(),
  /** Epoch ms after which the attempt counts as timed out whatever the consumer does. */
  deadline: z.number(),
});
export const CancelMessage = z.object({ v: version, type: z.literal('cancel'), deliveryId: z.string() });
export const ErrorMessage = z.object({
  v: version,
  type: z.literal('error'),
  code: z.string(),
  message: z.string(),
  /** The offending field, as a path (`deliveryId`, `topics[1]`). */
  field: z.string().optional(),
});
export const ServerMessage = z.discriminatedUnion('type', [WelcomeMessage, FireMessage, CancelMessage, ErrorMessage]);
export type ServerMessage = z.output<typeof ServerMessage>;
export type FireMessage = z.output<typeof FireMessage>;
export type ErrorMessage = z.output<typeof ErrorMessage>;

export type Parsed<T> = { ok: true; message: T } | { ok: false; error: ErrorMessage };

/** The `error` reply for a zod failure: names the first bad field. */
export const errorMessageOf = (code: ProtocolErrorCode, error: z.ZodError): ErrorMessage => {
  const issues = fieldIssuesOf(error);
  const first = issues[0];
  return {
    v: PROTOCOL_VERSION,
    type: 'error',
    code,
    message: issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '),
    ...(first?.path ? { field: first.path } : {}),
  };
};

const parseJson = <S extends z.ZodType>(schema: S, raw: string): Parsed<z.output<S>> => {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return {
      ok: false,
      error: { v: PROTOCOL_VERSION, type: 'error', code: ProtocolErrorCode.badJson, message: 'message is not JSON' },
    };
  }
  const result = schema.safeParse(json);
  return result.success
    ? { ok: true, message: result.data }
    : { ok: false, error: errorMessageOf(ProtocolErrorCode.badMessage, result.error) };
};

export const parseClientMessage = (raw: string): Parsed<ClientMessage> => parseJson(ClientMessage, raw);
export const parseServerMessage = (raw: string): Parsed<ServerMessage> => parseJson(ServerMessage, raw);
