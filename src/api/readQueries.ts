import { z } from 'zod';
import { ClusterEntryKind } from '../../domain/projections/clusterHistory.js';
import { AuditAction } from '../../domain/projections/auditIndex.js';
import { AttemptStatus } from '../../domain/projections/fireIndex.js';
import { StatsTier } from '../../domain/projections/statistics.js';
import { ClusterEvent } from '../../domain/cluster/events.js';
import { TaskEvent, Trigger } from '../../domain/task/events.js';
import { TaskId } from '../../domain/task/spec.js';
import { Duration } from '../../domain/time/duration.js';
import { BoardSort, BoardStatus } from '../projections/queries/boardQueries.js';
import { decodeCursor } from '../projections/queries/page.js';
import { QueryInt } from './validation.js';

/**
 * The query strings of the read-side routes (`/api/fires`, `/api/audit`, the board, stats, cluster
 * history, point in time, explain), validated here so a bad value is a 400 naming its parameter before
 * the read side is asked. Each is a function of "now": `since=1h` means an hour before it.
 */

/** An instant: ISO-8601 text with an offset, a duration meaning that long ago (`15m`, `24h`, `7d`), or `now`. */
export const TimeBound = (now: number) =>
  z
    .string({ error: 'is required: an ISO-8601 time (2026-03-01T12:00:00Z) or a duration ago (15m, 24h, 7d)' })
    .min(1, 'must be an ISO-8601 time (2026-03-01T12:00:00Z) or a duration ago (15m, 24h, 7d)')
    .transform((text, ctx) => {
      if (text === 'now') return now;
      if (/^\d{4}-\d{2}-\d{2}T/.test(text)) {
        const parsed = z.iso.datetime({ offset: true }).safeParse(text);
        if (parsed.success) return Date.parse(text);
      } else if (/[a-z]/i.test(text)) {
        // A bare number is refused, not read as milliseconds ago: an epoch time or "5" meaning minutes
        // would silently select another window.
        const ago = Duration.safeParse(text);
        if (ago.success) return now - ago.data;
      }
      ctx.addIssue({
        code: 'custom',
        message: `must be an ISO-8601 time (2026-03-01T12:00:00Z) or a duration ago (15m, 24h, 7d), got ${JSON.stringify(text)}`,
      });
      return z.NEVER;
    });

/** A comma-separated list of allowed values (`status=failed,timed-out`); each one is checked. */
const ListOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z
    .string()
    .transform((text) => text.split(',').map((v) => v.trim()))
    .pipe(
      z.array(z.enum(values, { error: `must be one or more of ${values.join(', ')}, separated by commas` })).min(1),
    );

const Cursor = <T extends readonly unknown[]>(arity: number) =>
  z.string().transform((text, ctx) => {
    try {
      return decodeCursor(text, arity) as unknown as T;
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: 'is not a cursor this query returned (pass `next` from the previous page)',
      });
      return z.NEVER;
    }
  });

/** `since` before `until` when both are given: the other way round would silently select nothing. */
const sinceBeforeUntil = (q: { since?: number; until?: number }, ctx: z.RefinementCtx): void => {
  if (q.since !== undefined && q.until !== undefined && q.since >= q.until)
    ctx.addIssue({ code: 'custom', path: ['since'], message: 'must be before `until`' });
};

const Limit = (max: number, fallback: number) => QueryInt(1, max).default(fallback);
const Bool = z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true');
const Text = z.string().min(1).max(200);

const values = <T extends Record<string, string>>(o: T) => Object.values(o) as [T[keyof T], ...T[keyof T][]];

export const FiresQuery = (now: number) =>
  z
    .strictObject({
      task: TaskId.optional(),
      status: ListOf(values(AttemptStatus)).optional(),
      node: Text.optional(),
      trigger: ListOf(values(Trigger)).optional(),
      since: TimeBound(now).optional(),
      until: TimeBound(now).optional(),
      minLateness: Duration.optional(),
      cursor: Cursor<[number, number]>(2).optional(),
      limit: Limit(1_000, 100),
    })
    .superRefine(sinceBeforeUntil);

export const AuditQuery = (now: number) =>
  z
    .strictObject({
      task: TaskId.optional(),
      actor: Text.optional(),
      action: ListOf(values(AuditAction)).optional(),
      since: TimeBound(now).optional(),
      until: TimeBound(now).optional(),
      cursor: Cursor<[number, string, number]>(3).optional(),
      limit: Limit(1_000, 100),
    })
    .superRefine(sinceBeforeUntil);

/** `key=value` pairs separated by commas; a value may hold `=` (the key ends at the first one). */
const Labels = z
  .string()
  .regex(/^[^=,]+=[^,]*(,[^=,]+=[^,]*)*$/, 'must be key=value pairs separated by commas')
  .transform((text) =>
    Object.fromEntries(
      text.split(',').map((pair) => {
        const at = pair.indexOf('=');
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
    ),
  );

export const BoardQuery = (now: number) =>
  z.strictObject({
    status: z
      .union([z.literal('all'), ListOf(BoardStatus as unknown as [BoardStatus, ...BoardStatus[]])], {
        error: `must be all, or one or more of ${BoardStatus.join(', ')} separated by commas`,
      })
      .optional()
      .transform((s) => (s === 'all' ? undefined : s)),
    owner: Text.optional(),
    failing: Bool.optional(),
    q: Text.optional(),
    topic: Text.optional(),
    labels: Labels.optional(),
    sort: z.enum(BoardSort).default('id'),
    order: z.enum(['asc', 'desc']).default('asc'),
    cursor: Cursor<[string | number | null, string]>(2).optional(),
    limit: Limit(10_000, 1_000),
    /** The board as it was at that time (point in time). */
    at: TimeBound(now).optional(),
  });

export const TaskAtQuery = (now: number) => z.strictObject({ at: TimeBound(now).optional() });

export const ExplainQuery = (now: number) => z.strictObject({ at: TimeBound(now) });

export const ChangesQuery = z.strictObject({
  cursor: Cursor<[number]>(1).optional(),
  limit: Limit(1_000, 100),
});

const STEP_MS: Record<StatsTier, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const MAX_POINTS = 10_000;

export const StatsQuery = (now: number) =>
  z
    .strictObject({
      task: TaskId.optional(),
      from: TimeBound(now).optional(),
      to: TimeBound(now).optional(),
      /** Default: minute for all tasks, hour for one task (a task's statistics start at the hour). */
      step: z.enum(StatsTier).optional(),
    })
    .transform((q, ctx) => {
      const step = q.step ?? (q.task === undefined ? 'minute' : 'hour');
      const width = STEP_MS[step];
      // Buckets are whole steps (UTC): the range widens to the buckets it touches, and the answer's
      // `from`/`to` say so — a bucket is counted whole or not at all.
      const askedTo = q.to ?? now;
      const askedFrom = q.from ?? askedTo - 60 * width;
      const to = Math.ceil(askedTo / width) * width;
      const from = Math.floor(askedFrom / width) * width;
      if (q.task !== undefined && step === 'minute')
        ctx.addIssue({
          code: 'custom',
          path: ['step'],
          message:
            'a task has statistics per hour and day (per minute: all tasks together; its single fires: /api/fires?task=)',
        });
      if (askedFrom >= askedTo) ctx.addIssue({ code: 'custom', path: ['from'], message: 'must be before `to`' });
      else if ((to - from) / width > MAX_POINTS)
        ctx.addIssue({
          code: 'custom',
          path: ['from'],
          message: `asks for more than ${MAX_POINTS} points of one ${step}: use a larger step or a shorter range`,
        });
      return { ...(q.task ? { task: q.task } : {}), from, to, step };
    });

export const ClusterHistoryQuery = (now: number) =>
  z
    .strictObject({
      kind: ListOf(values(ClusterEntryKind)).optional(),
      node: Text.optional(),
      task: TaskId.optional(),
      since: TimeBound(now).optional(),
      until: TimeBound(now).optional(),
      cursor: Cursor<[number]>(1).optional(),
      limit: Limit(1_000, 100),
    })
    .superRefine(sinceBeforeUntil);

export const HistoryQuery = z.strictObject({ limit: Limit(10_000, 100) });

const typesOf = (union: { options: ReadonlyArray<{ shape: { type: { value: string } } }> }) =>
  union.options.map((o) => o.shape.type.value);

/** What the live feed can be filtered on: every event type, and `board` for board rows. */
const FEED_TYPES = ['board', ...typesOf(TaskEvent), ...typesOf(ClusterEvent)] as const;

export const StreamQuery = z.strictObject({
  task: z
    .string()
    .transform((t) => t.split(','))
    .pipe(z.array(TaskId))
    .optional(),
  topic: z
    .string()
    .transform((t) => t.split(','))
    .pipe(z.array(Text))
    .optional(),
  type: ListOf(FEED_TYPES).optional(),
  /** Resume after this log position (the same as the `Last-Event-ID` header, which wins). */
  after: QueryInt(0, Number.MAX_SAFE_INTEGER).optional(),
});
