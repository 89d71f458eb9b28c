import { z } from 'zod';
import type { FieldIssue } from '../errors/index.js';
import { JsonValue } from '../schema/jsonValue.js';
import { Duration } from '../time/duration.js';
import { Instant } from '../time/instant.js';
import { cronProblem, isTimeZone } from './schedule.js';

/**
 * The task document: the public contract of `POST /api/tasks`, `apply -f`, and the `spec` carried by
 * `TaskCreated`/`TaskUpdated`. `TaskSpecInput` is what users write (durations as text, defaults
 * omitted); `TaskSpec` is the compiled form stored in the log (durations in ms, every default filled),
 * so two documents that mean the same thing compare equal.
 */

export const TaskId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
    'must be 1-128 characters of letters, digits, ".", "_" or "-", starting with a letter or digit',
  );

export const TimeZone = z
  .string()
  .refine(isTimeZone, { message: 'must be an IANA time zone such as "Europe/Berlin" or "UTC"' });

/** Fields every schedule kind accepts: when ticks may happen and how many. */
const scheduleWindow = {
  startAt: Instant.optional(),
  endAt: Instant.optional(),
  maxRuns: z.number().int().positive().optional(),
  /** Each fire is delayed by a stable pseudo-random offset in [0, jitter), derived from its fireId. */
  jitter: Duration.optional(),
};

export const MIN_PERIOD_MS = 100;

export const CronSchedule = z
  .strictObject({
    cron: z.string().min(1, 'must be a cron expression such as "*/5 * * * * *"'),
    timezone: TimeZone.default('UTC'),
    ...scheduleWindow,
  })
  .superRefine((s, ctx) => {
    // An empty expression or an unknown zone already has its own issue; the expression is still judged.
    if (!s.cron) return;
    const problem = cronProblem(s.cron, isTimeZone(s.timezone) ? s.timezone : 'UTC');
    if (problem) ctx.addIssue({ code: 'custom', path: ['cron'], message: problem });
  });
export const EverySchedule = z.strictObject({
  every: Duration.refine((v) => v >= MIN_PERIOD_MS, `must be at least ${MIN_PERIOD_MS}ms`),
  ...scheduleWindow,
});
export const DelayAfterSchedule = z.strictObject({
  delayAfter: Duration.refine((v) => v >= MIN_PERIOD_MS, `must be at least ${MIN_PERIOD_MS}ms`),
  ...scheduleWindow,
});
export const AtSchedule = z.strictObject({
  at: Instant,
  jitter: Duration.optional(),
});

export const ScheduleSpec = z
  .union([CronSchedule, EverySchedule, DelayAfterSchedule, AtSchedule], {
    error: 'must have exactly one of "cron", "every", "delayAfter" or "at"',
  })
  .superRefine((s, ctx) => {
    if ('startAt' in s && s.startAt && s.endAt && Date.parse(s.endAt) <= Date.parse(s.startAt)) {
      ctx.addIssue({ code: 'custom', path: ['endAt'], message: 'must be after startAt' });
    }
  });
export type ScheduleSpec = z.output<typeof ScheduleSpec>;
export type CronScheduleSpec = z.output<typeof CronSchedule>;
export type EveryScheduleSpec = z.output<typeof EverySchedule>;
export type DelayAfterScheduleSpec = z.output<typeof DelayAfterSchedule>;
export type AtScheduleSpec = z.output<typeof AtSchedule>;

export const HttpTarget = z.strictObject({
  http: z.strictObject({
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
    method: z.enum(['POST', 'PUT']).default('POST'),
    headers: z.record(z.string(), z.string()).default({}),
    timeout: Duration.default(10_000),
    /** When set, each request carries an HMAC-SHA256 signature of `<timestamp>.<body>` with this secret. */
    secret: z.string().min(16, 'must be at least 16 characters').optional(),
  }),
});
export const TopicTarget = z.strictObject({
  topic: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/, 'must be letters, digits, ".", "_", ":" or "-"'),
});
export const TargetSpec = z.union([TopicTarget, HttpTarget], { error: 'must have either "topic" or "http"' });
export type TargetSpec = z.output<typeof TargetSpec>;

export const MisfirePolicy = { fireOnce: 'fire-once', fireAll: 'fire-all', skip: 'skip' } as const;
export type MisfirePolicy = (typeof MisfirePolicy)[keyof typeof MisfirePolicy];

export const MisfireSpec = z.strictObject({
  policy: z.enum(MisfirePolicy).default('fire-once'),
  /** Ticks older than this when finally handled are dropped (recorded as `TaskMisfired`); unlimited when absent. */
  catchUpWindow: Duration.optional(),
  /** `fire-all` fires at most this many missed ticks (the most recent ones); older ones are dropped. */
  maxCatchUp: z.number().int().positive().max(100_000).default(100),
  /** A tick handled later than this after its time counts as missed. */
  threshold: Duration.default(1_000),
});
export type MisfireSpec = z.output<typeof MisfireSpec>;

export const OverlapPolicy = {
  skip: 'skip',
  bufferOne: 'buffer-one',
  bufferAll: 'buffer-all',
  allow: 'allow',
  cancelPrevious: 'cancel-previous',
} as const;
export type OverlapPolicy = (typeof OverlapPolicy)[keyof typeof OverlapPolicy];

export const RetrySpec = z.strictObject({
  /** Attempts per fire, the first included; 1 means no retry. */
  maxAttempts: z.number().int().min(1).max(100).default(1),
  backoff: z
    .strictObject({
      initial: Duration.default(1_000),
      max: Duration.default(300_000),
      multiplier: z.number().min(1).max(10).default(2),
      /** Fraction of each delay that is randomised (0 = none, 1 = full jitter). */
      jitter: z.number().min(0).max(1).default(0.2),
    })
    .prefault({}),
});
export type RetrySpec = z.output<typeof RetrySpec>;

export const RunOnSpec = z.strictObject({
  nodes: z.array(z.string().min(1)).optional(),
  labels: z.record(z.string(), z.string()).optional(),
});

/**
 * How much execution history the task's stream keeps (docs/operations.md, "Retention"): fires fired
 * within `maxAge`, and at most the last `maxFires` of them. When given, it replaces the node's
 * `KAIROS_RETENTION_*` policy for this task; `{}` keeps everything.
 */
export const RetentionSpec = z.strictObject({
  maxAge: Duration.refine((v) => v >= 1_000, 'must be at least 1s').optional(),
  maxFires: z.number().int().positive().optional(),
});
export type RetentionSpec = z.output<typeof RetentionSpec>;

export const TaskSpec = z.strictObject({
  id: TaskId,
  name: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
  schedule: ScheduleSpec,
  target: TargetSpec,
  payload: JsonValue.default(null),
  misfire: MisfireSpec.prefault({}),
  overlap: z.enum(OverlapPolicy).default('skip'),
  retry: RetrySpec.prefault({}),
  /** Per-attempt timeout: an attempt with no outcome after this long is failed (and retried by policy). */
  timeout: Duration.refine((v) => v >= 1, 'must be at least 1ms').default(60_000),
  labels: z.record(z.string(), z.string()).default({}),
  /**
   * Restricts which nodes may hold the task: node ids and/or labels (`KAIROS_NODE_LABELS`). A task no live
   * node matches runs nowhere and is reported (`/api/cluster` `unplaceable`, `TasksUnplaceable`).
   */
  runOn: RunOnSpec.optional(),
  retention: RetentionSpec.optional(),
});
export type TaskSpec = z.output<typeof TaskSpec>;
export type TaskSpecInput = z.input<typeof TaskSpec>;

/**
 * A task file's (or an apply request's) ids given more than once: one issue per repeat, at
 * `tasks[i].id`, naming the first place the id appeared. `ids` are `[index, id]` pairs.
 */
export const duplicateIdIssues = (ids: Iterable<readonly [number, unknown]>): FieldIssue[] => {
  const issues: FieldIssue[] = [];
  const firstAt = new Map<unknown, number>();
  for (const [i, id] of ids) {
    const first = firstAt.get(id);
    if (first === undefined) firstAt.set(id, i);
    else
      issues.push({ path: `tasks[${i}].id`, message: `'${String(id)}' appears more than once (also tasks[${first}])` });
  }
  return issues;
};

/** Structural equality of two compiled specs, used to make `apply` and `PUT` idempotent. */
export const sameSpec = (a: TaskSpec, b: TaskSpec): boolean => canonicalJson(a) === canonicalJson(b);

/** JSON with object keys sorted, so equal values give equal text whatever the order they were built in. */
export const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : 1)))
      : v,
  );
