import { z } from 'zod';
import { toMillis } from '../time/instant.js';
import { retentionCutoff, type ProjectedEvent, type ReadModel, type RowReader, type RowWrite } from './readModel.js';

/**
 * The fire index: one row per attempt of every fire of every task — when it was due, when and where it
 * fired, how late, how it ended, who answered — and one row per range of ticks that did not fire
 * (skipped by the overlap policy, or handled by the misfire policy). It answers "which fires failed
 * last night" across all tasks without reading the log.
 */

export const AttemptStatus = {
  inFlight: 'in-flight',
  succeeded: 'succeeded',
  failed: 'failed',
  timedOut: 'timed-out',
  cancelled: 'cancelled',
} as const;
export type AttemptStatus = (typeof AttemptStatus)[keyof typeof AttemptStatus];

const answer = z.object({
  group: z.string().optional(),
  consumer: z.string().optional(),
  status: z.enum(['succeeded', 'failed']),
  message: z.string().optional(),
  httpStatus: z.number().optional(),
});

export const FireAttemptRow = z.object({
  taskId: z.string(),
  fireId: z.string(),
  attempt: z.number(),
  /** Why this attempt happened: `schedule`, `catch-up` or `manual` for a first attempt, `retry` after it. */
  trigger: z.string(),
  scheduledAt: z.number(),
  firedAt: z.number(),
  /** firedAt − scheduledAt of a first attempt; null for a retry (it was due at its backoff, not at the tick). */
  latenessMs: z.number().nullable(),
  node: z.string(),
  epoch: z.number(),
  deadline: z.number(),
  status: z.enum(AttemptStatus),
  /** Set on a failed attempt that another attempt follows. */
  willRetryAt: z.number().nullable(),
  outcomeAt: z.number().nullable(),
  /** As the target measured it (delivery to outcome). */
  durationMs: z.number().nullable(),
  message: z.string().nullable(),
  /** Each consumer group's answer (topic fires) or the HTTP response (webhooks). */
  answers: z.array(answer),
  /** Who asked for a manual fire, and why. */
  actor: z.string().nullable(),
  reason: z.string().nullable(),
  /** The log position of the attempt's `TaskFired`. */
  position: z.number(),
});
export type FireAttemptRow = z.output<typeof FireAttemptRow>;

export const TickGapRow = z.object({
  position: z.number(),
  taskId: z.string(),
  kind: z.enum(['skipped', 'misfired']),
  /** `skipped` (overlap), `coalesced` or `dropped` (misfire). */
  action: z.string(),
  policy: z.string(),
  /** The ticks in (after, until]. */
  after: z.number(),
  until: z.number(),
  /** How many ticks; null when too many to count cheaply. */
  count: z.number().nullable(),
  at: z.number(),
  /** `overload`: missed because the node had more due work than it could do (`TaskMisfired.cause`). */
  cause: z.enum(['overload']).nullable(),
});
export type TickGapRow = z.output<typeof TickGapRow>;

type FireIndexRows = { attempts: FireAttemptRow; gaps: TickGapRow };

const finalStatus = (reason: 'error' | 'timeout' | 'cancelled'): AttemptStatus =>
  reason === 'timeout' ? 'timed-out' : reason === 'cancelled' ? 'cancelled' : 'failed';

const evolve = (rows: RowReader<FireIndexRows>, e: ProjectedEvent): RowWrite<FireIndexRows>[] => {
  if (e.kind !== 'task') return [];
  const event = e.event;
  switch (event.type) {
    case 'TaskFired': {
      const d = event.data;
      const scheduledAt = toMillis(d.scheduledAt);
      const firedAt = toMillis(d.firedAt);
      const manual = d.trigger === 'manual';
      return [
        {
          table: 'attempts',
          row: {
            taskId: d.taskId,
            fireId: d.fireId,
            attempt: d.attempt,
            trigger: d.trigger,
            scheduledAt,
            firedAt,
            latenessMs: d.attempt === 1 ? firedAt - scheduledAt : null,
            node: d.node,
            epoch: d.epoch,
            deadline: toMillis(d.deadline),
            status: 'in-flight',
            willRetryAt: null,
            outcomeAt: null,
            durationMs: null,
            message: null,
            answers: [],
            actor: manual ? (e.metadata?.actor ?? null) : null,
            reason: d.reason ?? null,
            position: e.position,
          },
        },
      ];
    }
    case 'TaskSucceeded':
    case 'TaskFailed': {
      const d = event.data;
      // An attempt whose TaskFired was truncated away (retention) has no row to complete.
      const row = rows.get('attempts', [d.taskId, d.fireId, d.attempt]);
      if (!row) return [];
      const failed = event.type === 'TaskFailed' ? event.data : null;
      return [
        {
          table: 'attempts',
          // Written out whole: a spread of the row measured several times slower, once per outcome.
          row: {
            taskId: row.taskId,
            fireId: row.fireId,
            attempt: row.attempt,
            trigger: row.trigger,
            scheduledAt: row.scheduledAt,
            firedAt: row.firedAt,
            latenessMs: row.latenessMs,
            node: row.node,
            epoch: row.epoch,
            deadline: row.deadline,
            status: failed ? finalStatus(failed.reason) : 'succeeded',
            willRetryAt: failed?.willRetryAt ? toMillis(failed.willRetryAt) : null,
            outcomeAt: toMillis(d.at),
            durationMs: d.durationMs,
            message: failed?.message ?? null,
            answers: d.details,
            actor: row.actor,
            reason: row.reason,
            position: row.position,
          },
        },
      ];
    }
    case 'TaskSkipped':
    case 'TaskMisfired': {
      const d = event.data;
      return [
        {
          table: 'gaps',
          row: {
            position: e.position,
            taskId: d.taskId,
            kind: event.type === 'TaskSkipped' ? 'skipped' : 'misfired',
            action: event.type === 'TaskSkipped' ? 'skipped' : event.data.action,
            policy: d.policy,
            after: toMillis(d.after),
            until: toMillis(d.until),
            count: d.count,
            at: toMillis(d.at),
            cause: event.type === 'TaskMisfired' ? (event.data.cause ?? null) : null,
          },
        },
      ];
    }
    default:
      return [];
  }
};

export type FireIndexOptions = {
  /** Attempts and gaps older than this (by when they fired / were recorded) are dropped. null: kept for ever. */
  keepMs: number | null;
};

export const fireIndex = (options: FireIndexOptions = { keepMs: null }): ReadModel<FireIndexRows> => ({
  name: 'fires',
  // 2: gaps carry the misfire's cause.
  version: 2,
  reads: 'tasks',
  tables: {
    attempts: { row: FireAttemptRow, key: ['taskId', 'fireId', 'attempt'] },
    gaps: { row: TickGapRow, key: ['position'] },
  },
  evolve: (rows, e, { watermark }) => {
    const writes = evolve(rows, e);
    if (options.keepMs === null) return writes;
    // What retention removes must not come back (a live model and a rebuild must agree): the same cut.
    const oldest = retentionCutoff(watermark, options.keepMs);
    return writes.filter((w) => !('row' in w) || ('firedAt' in w.row ? w.row.firedAt : w.row.at) >= oldest);
  },
  ...(options.keepMs === null
    ? {}
    : {
        retention: {
          attempts: { column: 'firedAt', keepMs: options.keepMs },
          gaps: { column: 'at', keepMs: options.keepMs },
        },
      }),
});
