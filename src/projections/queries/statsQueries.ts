import { quantile, type Histogram } from '../../../domain/projections/histogram.js';
import {
  ALL_TASKS,
  emptyBucket,
  mergeBuckets,
  type StatsBucketRow,
  type StatsTier,
} from '../../../domain/projections/statistics.js';
import type { ReadModelDb } from '../readModelDb.js';
import { isoOrNull } from './page.js';

export type StatsArgs = { task?: string; from: number; to: number; step: StatsTier };

/** Count, percentiles (within the histogram's 10 %), max and mean of a latency kept as a histogram. */
const latency = (count: number, sum: number, max: number | null, histogram: Histogram) => ({
  count,
  p50Ms: max === null ? null : quantile(histogram, 0.5, max),
  p99Ms: max === null ? null : quantile(histogram, 0.99, max),
  maxMs: max,
  meanMs: count === 0 ? null : Math.round((sum / count) * 10) / 10,
});

/** A bucket as a point of a series: its counts as they are, its latencies summarised. */
const pointOf = ({
  bucketStart,
  taskId: _taskId,
  latenessCount,
  latenessSumMs,
  latenessMaxMs,
  latenessHistogram,
  durationCount,
  durationSumMs,
  durationMaxMs,
  durationHistogram,
  ...counts
}: StatsBucketRow) => ({
  at: isoOrNull(bucketStart),
  ...counts,
  lateness: latency(latenessCount, latenessSumMs, latenessMaxMs, latenessHistogram),
  duration: latency(durationCount, durationSumMs, durationMaxMs, durationHistogram),
});

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
    total: { ...pointOf(rows.reduce(mergeBuckets, emptyBucket(args.from, taskId))), at: undefined },
  };
};
