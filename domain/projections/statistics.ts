import { z } from 'zod';
import type { TaskEvent } from '../task/events.js';
import { toMillis } from '../time/instant.js';
import { Histogram, addToBucket, bucketOf, mergeHistograms } from './histogram.js';
import { retentionCutoff, type ReadModel, type RowKey, type RowReader, type RowWrite } from './readModel.js';

/**
 * Statistics: how many fires, retries, outcomes, skipped and misfired ticks, and how late and how long,
 * for all tasks together in UTC minutes, hours and days, and per task in hours and days — plus running
 * totals since the log began for Prometheus counters. Per task and minute would be a row per fire for
 * any task firing less than once a minute (most of them): the fire index already has those, one row
 * per attempt, and a rebuild would write twice as many rows. A fire counts at its `firedAt`, an outcome or a tick range at its
 * `at`. Every bucket row is a sum, so a dashboard adds rows up (and merges their histograms) to widen
 * a window, and the day tier outlives the finer ones.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The bucket widths, each its own table. */
export const StatsTier = { minute: 'minute', hour: 'hour', day: 'day' } as const;
export type StatsTier = (typeof StatsTier)[keyof typeof StatsTier];

const TIERS: readonly (readonly [StatsTier, number])[] = [
  [StatsTier.minute, MINUTE],
  [StatsTier.hour, HOUR],
  [StatsTier.day, DAY],
];

/** The `taskId` of the rows that count all tasks together (a task id cannot be `*`). */
export const ALL_TASKS = '*';

const counts = {
  /** First attempts: schedule, catch-up and manual fires. */
  fires: z.number(),
  manual: z.number(),
  catchUp: z.number(),
  /** Attempts after the first. */
  retries: z.number(),
  succeeded: z.number(),
  /** Final failures, whatever the reason (error, timeout, cancelled). */
  failed: z.number(),
  /** Final failures by timeout: a subset of `failed`. */
  timedOut: z.number(),
  /** Failed attempts that a retry follows. */
  retried: z.number(),
  /** Ticks the overlap policy skipped (a range of unknown size counts as one). */
  skipped: z.number(),
  /** Ticks the misfire policy coalesced or dropped (a range of unknown size counts as one). */
  misfired: z.number(),
};
type Counts = { [K in keyof typeof counts]: number };

/** One bucket of one tier: what happened in it, for one task or for all (`*`). Every column is a sum. */
export const StatsBucketRow = z.object({
  /** Epoch ms of the bucket's first instant (UTC). */
  bucketStart: z.number(),
  /** The task, or `*` for all tasks. */
  taskId: z.string(),
  ...counts,
  /** firedAt − scheduledAt of schedule and catch-up fires (manual fires are never late). */
  latenessCount: z.number(),
  latenessSumMs: z.number(),
  latenessMaxMs: z.number().nullable(),
  latenessHistogram: Histogram,
  /** `durationMs` of succeeded attempts and of final failures (not of failures a retry follows). */
  durationCount: z.number(),
  durationSumMs: z.number(),
  durationMaxMs: z.number().nullable(),
  durationHistogram: Histogram,
});
export type StatsBucketRow = z.output<typeof StatsBucketRow>;

/** Counts since the log began: never pruned, so they only grow (Prometheus counters). */
export const StatsTotalsRow = z.object({ scope: z.literal(ALL_TASKS), ...counts });
export type StatsTotalsRow = z.output<typeof StatsTotalsRow>;

/** The model's tables: one per tier, and the totals. */
export type StatisticsRows = {
  minute: StatsBucketRow;
  hour: StatsBucketRow;
  day: StatsBucketRow;
  totals: StatsTotalsRow;
};

/** How long the tiers are kept; the totals are kept for ever. */
export type StatisticsOptions = {
  /** How long each tier's rows are kept, by `bucketStart`, relative to the watermark. */
  readonly keepMs: Readonly<Record<StatsTier, number>>;
};

/** Minutes for 2 days, hours for 90 days, days for 5 years (1,826 days). */
export const defaultStatisticsOptions: StatisticsOptions = {
  keepMs: { minute: 2 * DAY, hour: 90 * DAY, day: 1_826 * DAY },
};

/** What one event adds: its counts, when it counts, and the lateness or duration it observed. */
type Tally = Counts & { at: number; latenessMs: number | null; durationMs: number | null };

// Tallies and rows are built as whole literals, field by field: spreading a row and overriding some of
// its fields measured over ten times slower in V8 (Node 20), and every event builds seven rows.

/** A tally of the counts an event adds (the others 0). */
const tally = (
  at: number,
  add: Partial<Counts>,
  latenessMs: number | null = null,
  durationMs: number | null = null,
): Tally => ({
  at,
  fires: add.fires ?? 0,
  manual: add.manual ?? 0,
  catchUp: add.catchUp ?? 0,
  retries: add.retries ?? 0,
  succeeded: add.succeeded ?? 0,
  failed: add.failed ?? 0,
  timedOut: add.timedOut ?? 0,
  retried: add.retried ?? 0,
  skipped: add.skipped ?? 0,
  misfired: add.misfired ?? 0,
  latenessMs,
  // Whole ms (what a node records; another writer's log may hold fractions): sums of integers do not
  // depend on their order, so statistics folded in two halves and merged equal those of one fold.
  durationMs: durationMs === null ? null : Math.round(durationMs),
});

/** Null for the events that change no statistic. */
const tallyOf = (event: TaskEvent): Tally | null => {
  switch (event.type) {
    case 'TaskFired': {
      const d = event.data;
      const at = toMillis(d.firedAt);
      if (d.attempt > 1) return tally(at, { retries: 1 });
      const manual = d.trigger === 'manual';
      const catchUp = d.trigger === 'catch-up' ? 1 : 0;
      return tally(at, { fires: 1, manual: manual ? 1 : 0, catchUp }, manual ? null : at - toMillis(d.scheduledAt));
    }
    case 'TaskSucceeded':
      return tally(toMillis(event.data.at), { succeeded: 1 }, null, event.data.durationMs);
    case 'TaskFailed': {
      const d = event.data;
      if (d.willRetryAt !== undefined) return tally(toMillis(d.at), { retried: 1 });
      const timedOut = d.reason === 'timeout' ? 1 : 0;
      return tally(toMillis(d.at), { failed: 1, timedOut }, null, d.durationMs);
    }
    case 'TaskSkipped':
      return tally(toMillis(event.data.at), { skipped: event.data.count ?? 1 });
    case 'TaskMisfired':
      return tally(toMillis(event.data.at), { misfired: event.data.count ?? 1 });
    default:
      return null;
  }
};

/** A bucket with nothing in it yet. */
export const emptyBucket = (bucketStart: number, taskId: string): StatsBucketRow => ({
  bucketStart,
  taskId,
  fires: 0,
  manual: 0,
  catchUp: 0,
  retries: 0,
  succeeded: 0,
  failed: 0,
  timedOut: 0,
  retried: 0,
  skipped: 0,
  misfired: 0,
  latenessCount: 0,
  latenessSumMs: 0,
  latenessMaxMs: null,
  latenessHistogram: [],
  durationCount: 0,
  durationSumMs: 0,
  durationMaxMs: null,
  durationHistogram: [],
});

const TOTALS_KEY: RowKey = [ALL_TASKS];
const NO_TOTALS: StatsTotalsRow = {
  scope: ALL_TASKS,
  fires: 0,
  manual: 0,
  catchUp: 0,
  retries: 0,
  succeeded: 0,
  failed: 0,
  timedOut: 0,
  retried: 0,
  skipped: 0,
  misfired: 0,
};

const totalsPlus = (row: StatsTotalsRow, t: Counts): StatsTotalsRow => ({
  scope: ALL_TASKS,
  fires: row.fires + t.fires,
  manual: row.manual + t.manual,
  catchUp: row.catchUp + t.catchUp,
  retries: row.retries + t.retries,
  succeeded: row.succeeded + t.succeeded,
  failed: row.failed + t.failed,
  timedOut: row.timedOut + t.timedOut,
  retried: row.retried + t.retried,
  skipped: row.skipped + t.skipped,
  misfired: row.misfired + t.misfired,
});

/** `row` plus the tally; the buckets of its lateness and duration are found once per event, not per row. */
const bucketPlus = (row: StatsBucketRow, t: Tally, latenessBucket: number, durationBucket: number): StatsBucketRow => {
  const late = t.latenessMs;
  const took = t.durationMs;
  return {
    bucketStart: row.bucketStart,
    taskId: row.taskId,
    fires: row.fires + t.fires,
    manual: row.manual + t.manual,
    catchUp: row.catchUp + t.catchUp,
    retries: row.retries + t.retries,
    succeeded: row.succeeded + t.succeeded,
    failed: row.failed + t.failed,
    timedOut: row.timedOut + t.timedOut,
    retried: row.retried + t.retried,
    skipped: row.skipped + t.skipped,
    misfired: row.misfired + t.misfired,
    latenessCount: late === null ? row.latenessCount : row.latenessCount + 1,
    latenessSumMs: late === null ? row.latenessSumMs : row.latenessSumMs + late,
    latenessMaxMs: late === null ? row.latenessMaxMs : Math.max(row.latenessMaxMs ?? late, late),
    latenessHistogram: late === null ? row.latenessHistogram : addToBucket(row.latenessHistogram, latenessBucket),
    durationCount: took === null ? row.durationCount : row.durationCount + 1,
    durationSumMs: took === null ? row.durationSumMs : row.durationSumMs + took,
    durationMaxMs: took === null ? row.durationMaxMs : Math.max(row.durationMaxMs ?? took, took),
    durationHistogram: took === null ? row.durationHistogram : addToBucket(row.durationHistogram, durationBucket),
  };
};

/** The counts are the sums, and the histograms the merges, of two buckets' (the first's start and task are kept): a wider window. */
export const mergeBuckets = (a: StatsBucketRow, b: StatsBucketRow): StatsBucketRow => ({
  bucketStart: a.bucketStart,
  taskId: a.taskId,
  fires: a.fires + b.fires,
  manual: a.manual + b.manual,
  catchUp: a.catchUp + b.catchUp,
  retries: a.retries + b.retries,
  succeeded: a.succeeded + b.succeeded,
  failed: a.failed + b.failed,
  timedOut: a.timedOut + b.timedOut,
  retried: a.retried + b.retried,
  skipped: a.skipped + b.skipped,
  misfired: a.misfired + b.misfired,
  latenessCount: a.latenessCount + b.latenessCount,
  latenessSumMs: a.latenessSumMs + b.latenessSumMs,
  latenessMaxMs: maxOf(a.latenessMaxMs, b.latenessMaxMs),
  latenessHistogram: mergeHistograms(a.latenessHistogram, b.latenessHistogram),
  durationCount: a.durationCount + b.durationCount,
  durationSumMs: a.durationSumMs + b.durationSumMs,
  durationMaxMs: maxOf(a.durationMaxMs, b.durationMaxMs),
  durationHistogram: mergeHistograms(a.durationHistogram, b.durationHistogram),
});

const maxOf = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.max(a, b));

/**
 * The statistics read model (`stats`): tables `minute` (`*` only), `hour` and `day` (per task and `*`)
 * with one row per UTC bucket, pruned by `options.keepMs`; table `totals` with one row, never pruned.
 */
export const statistics = (options: StatisticsOptions = defaultStatisticsOptions): ReadModel<StatisticsRows> => ({
  name: 'stats',
  version: 1,
  reads: 'tasks',
  tables: {
    minute: { row: StatsBucketRow, key: ['taskId', 'bucketStart'] },
    hour: { row: StatsBucketRow, key: ['taskId', 'bucketStart'] },
    day: { row: StatsBucketRow, key: ['taskId', 'bucketStart'] },
    totals: { row: StatsTotalsRow, key: ['scope'] },
  },
  retention: {
    minute: { column: 'bucketStart', keepMs: options.keepMs.minute },
    hour: { column: 'bucketStart', keepMs: options.keepMs.hour },
    day: { column: 'bucketStart', keepMs: options.keepMs.day },
  },
  // The `*` rows and the totals add up every task's fires.
  merge: { minute: mergeBuckets, hour: mergeBuckets, day: mergeBuckets, totals: totalsPlus },
  evolve: (rows: RowReader<StatisticsRows>, e, { watermark }) => {
    // `reads: 'tasks'` keeps cluster events away already; the check tells TypeScript there is a taskId.
    if (e.kind !== 'task') return [];
    const t = tallyOf(e.event);
    if (t === null) return [];
    const latenessBucket = t.latenessMs === null ? 0 : bucketOf(t.latenessMs);
    const durationBucket = t.durationMs === null ? 0 : bucketOf(t.durationMs);
    const totals = rows.get('totals', TOTALS_KEY) ?? NO_TOTALS;
    const writes: RowWrite<StatisticsRows>[] = [{ table: 'totals', row: totalsPlus(totals, t) }];
    const bump = (table: StatsTier, bucketStart: number, taskId: string): void => {
      const row = rows.get(table, [taskId, bucketStart]) ?? emptyBucket(bucketStart, taskId);
      // The three tiers share one row type; TypeScript cannot see that through the union of table names.
      writes.push({ table, row: bucketPlus(row, t, latenessBucket, durationBucket) } as RowWrite<StatisticsRows>);
    };
    for (const [table, width] of TIERS) {
      const bucketStart = t.at - (t.at % width);
      // What retention removes must not come back (a live model and a rebuild must agree): the same cut.
      if (bucketStart < retentionCutoff(watermark, options.keepMs[table])) continue;
      if (table !== StatsTier.minute) bump(table, bucketStart, e.taskId);
      bump(table, bucketStart, ALL_TASKS);
    }
    return writes;
  },
});
