import type { EventMetadata, TaskEvent } from '../../domain/task/events.js';
import { toMillis } from '../../domain/time/instant.js';

/**
 * The events a busy log is made of — fires, outcomes, claims, skips, misfires — checked field by
 * field without the schema's regular expressions and copies: a replay or a rebuild reads millions of
 * them, and the schema's parse costs more than everything else done with them. It accepts only the
 * exact shapes Kairos writes (ISO times as `toIso` writes them, lower-case UUIDs, whole numbers);
 * anything else — another version's shape, an odd but valid time format, a malformed event — gets
 * `undefined`, and the caller judges it with the schema as before. A test keeps the two in step.
 */

type Data = Record<string, unknown>;

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isCount = (v: unknown, min: number): v is number => Number.isInteger(v) && (v as number) >= min;
/** The log's own form, `YYYY-MM-DDTHH:mm:ss.sssZ`: `toMillis` reads it by hand (NaN on a non-digit). */
const isIso = (v: unknown): v is string => typeof v === 'string' && v.length === 24 && !Number.isNaN(toMillis(v));
/** As `z.uuid()` judges one (RFC 9562 version and variant), lower case as `uuid` writes it. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const isUuid = (v: unknown): v is string => typeof v === 'string' && UUID.test(v);
const oneOf =
  (...values: string[]) =>
  (v: unknown): boolean =>
    typeof v === 'string' && values.includes(v);
const isOptional =
  (check: (v: unknown) => boolean) =>
  (v: unknown): boolean =>
    v === undefined || check(v);

const isTrigger = oneOf('schedule', 'manual', 'catch-up', 'retry');
const isOwnershipReason = oneOf('start', 'node-lost', 'rebalance', 'drain', 'session-lost', 'recovered');
const isCountOrNull = (min: number) => (v: unknown) => v === null || isCount(v, min);
const isDuration = (v: unknown): boolean => typeof v === 'number' && v >= 0 && Number.isFinite(v);
const isDetail = (v: unknown): boolean => {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Data;
  return (
    (d.status === 'succeeded' || d.status === 'failed') &&
    isOptional((x) => typeof x === 'string')(d.group) &&
    isOptional((x) => typeof x === 'string')(d.consumer) &&
    isOptional((x) => typeof x === 'string')(d.message) &&
    isOptional((x) => Number.isInteger(x))(d.httpStatus) &&
    Object.keys(d).every(
      (k) => k === 'status' || k === 'group' || k === 'consumer' || k === 'message' || k === 'httpStatus',
    )
  );
};
const isDetails = (v: unknown): boolean => v === undefined || (Array.isArray(v) && v.every(isDetail));

/** Per type: every field's check. A field not listed makes the event go to the schema (it would strip it). */
const SHAPES: Record<string, Record<string, (v: unknown) => boolean>> = {
  TaskFired: {
    fireId: isUuid,
    scheduledAt: isIso,
    firedAt: isIso,
    node: isText,
    epoch: (v) => isCount(v, 0),
    attempt: (v) => isCount(v, 1),
    trigger: isTrigger,
    deadline: isIso,
    reason: isOptional((v) => typeof v === 'string'),
  },
  TaskSucceeded: {
    fireId: isUuid,
    attempt: (v) => isCount(v, 1),
    at: isIso,
    durationMs: isDuration,
    details: isDetails,
  },
  TaskFailed: {
    fireId: isUuid,
    attempt: (v) => isCount(v, 1),
    at: isIso,
    reason: oneOf('error', 'timeout', 'cancelled'),
    message: (v) => typeof v === 'string',
    durationMs: isDuration,
    willRetryAt: isOptional(isIso),
    details: isDetails,
  },
  TaskAssigned: { node: isText, epoch: (v) => isCount(v, 0), reason: isOwnershipReason, at: isIso },
  TaskReassigned: {
    node: isText,
    epoch: (v) => isCount(v, 0),
    previousNode: isText,
    previousEpoch: (v) => isCount(v, 0),
    reason: isOwnershipReason,
    at: isIso,
  },
  TaskReleased: { node: isText, epoch: (v) => isCount(v, 0), reason: (v) => typeof v === 'string', at: isIso },
  TaskSkipped: {
    after: isIso,
    until: isIso,
    count: isCountOrNull(1),
    policy: oneOf('skip', 'buffer-one', 'buffer-all'),
    at: isIso,
  },
  TaskMisfired: {
    after: isIso,
    until: isIso,
    count: isCountOrNull(0),
    action: oneOf('coalesced', 'dropped'),
    policy: oneOf('fire-once', 'fire-all', 'skip'),
    at: isIso,
    cause: isOptional(oneOf('overload')),
  },
};

/** The event, when it has exactly a shape Kairos writes for one of the busy types; otherwise undefined. */
export const decodeHotEvent = (type: string, data: unknown): TaskEvent | undefined => {
  const shape = SHAPES[type];
  if (!shape || typeof data !== 'object' || data === null) return undefined;
  const d = data as Data;
  if (d.v !== 1 || !isText(d.taskId)) return undefined;
  for (const key in d) if (key !== 'v' && key !== 'taskId' && !(key in shape)) return undefined;
  for (const key in shape) if (!shape[key]!(d[key])) return undefined;
  // The schema's one default among these shapes.
  const decoded =
    (type === 'TaskSucceeded' || type === 'TaskFailed') && d.details === undefined ? { ...d, details: [] } : d;
  return { type, data: decoded } as unknown as TaskEvent;
};

const METADATA_FIELDS: ReadonlySet<string> = new Set(['actor', 'correlationId', 'causationId', 'node']);

/** Metadata as Kairos writes it (`actor` and optional texts), taken as it is; otherwise undefined (ask the schema). */
export const decodeHotMetadata = (value: unknown): EventMetadata | undefined => {
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Data;
  if (!isText(m.actor)) return undefined;
  for (const key in m) if (!METADATA_FIELDS.has(key) || typeof m[key] !== 'string') return undefined;
  return m as EventMetadata;
};
