import { mergeHistograms, quantile, type Histogram } from '../../../domain/projections/histogram.js';
import { ALL_TASKS, type StatsBucketRow, type StatsTier } from '../../../domain/projections/statistics.js';
import type { ReadModelDb } from '../readModelDb.js';
import { isoOrNull } from './page.js';

export type StatsArgs = { task?: string; from: number; to: number; step: StatsTier };

const COUNTS = [
  'fires',
  'manual',
  'catchUp',
  'retries',
  'succeeded',
  'failed',
  'timedOut',
  'retried',
  'skipped',
  'misfired',
] as const;

/** Count, percentiles (within the histogram's 10 %), max and mean of a latency kept as a histogram. */
const latency = (count: number, sum: number, max: number | null, histogram: Histogram) => ({
  count,
  p50Ms: max === null ? null : quantile(histogram, 0.5, max),
  p99Ms: max === null ? null : quantile(histogram, 0.99, max),
  maxMs: max,
  meanMs: count === 0 ? null : Math.round((sum / count) * 10) / 10,
});

const pointOf = (row: StatsBucketRow) => ({
  at: isoOrNull(row.bucketStart),
  ...Object.fromEntries(COUNTS.map((c) => [c, row[c]])),
  lateness: latency(row.latenessCount, row.latenessSumMs, row.latenessMaxMs, row.latenessHistogram),
  duration: latency(row.durationCount, row.durationSumMs, row.durationMaxMs, row.durationHistogram),
});

const maxOf = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.max(a, b));

const sumOf = (rows: StatsBucketRow[], from: number, taskId: string): StatsBucketRow =>
  rows.reduce<StatsBucketRow>(
    (total, r) => ({
      ...total,
      ...Object.fromEntries(COUNTS.map((c) => [c, total[c] + r[c]])),
      latenessCount: total.latenessCount + r.latenessCount,
      latenessSumMs: total.latenessSumMs + r.latenessSumMs,
      latenessMaxMs: maxOf(total.latenessMaxMs, r.latenessMaxMs),
      latenessHistogram: mergeHistograms(total.latenessHistogram, r.latenessHistogram),
      durationCount: total.durationCount + r.durationCount,
      durationSumMs: total.durationSumMs + r.durationSumMs,
      durationMaxMs: maxOf(total.durationMaxMs, r.durationMaxMs),
      durationHistogram: mergeHistograms(total.durationHistogram, r.durationHistogram),
    }),
    {
      bucketStart: from,
      taskId,
      ...(Object.fromEntries(COUNTS.map((c) => [c, 0])) as Record<(typeof COUNTS)[number], number>),
      latenessCount: 0,
      latenessSumMs: 0,
      latenessMaxMs: null,
      latenessHistogram: [],
      durationCount: 0,
      durationSumMs: 0,
      durationMaxMs: null,
      durationHistogram: [],
    },
  );

/** A series for charts and reports: one point per bucket with something in it, and the range's total. */
export const queryStats = (db: ReadModelDb, args: StatsArgs) => {
  const taskId = args.task ?? ALL_TASKS;
  const rows = db.db
    .prepare(
      `SELECT * FROM "${db.tableName('stats', args.step)}" WHERE taskId = ? AND bucketStart >= ? AND bucketStart < ? ORDER BY bucketStart`,
    )
    .all(taskId, args.from, args.to)
    .map((r) => db.schema('stats', args.step).fromRecord(r as Record<string, unknown>) as StatsBucketRow);
  return {
    task: args.task ?? null,
    step: args.step,
    from: isoOrNull(args.from),
    to: isoOrNull(args.to),
    points: rows.map(pointOf),
    total: { ...pointOf(sumOf(rows, args.from, taskId)), at: undefined },
  };
};
