import { mergeHistograms, quantile } from '../../../domain/projections/histogram.js';
import { ALL_TASKS, type StatsBucketRow, type StatsTotalsRow } from '../../../domain/projections/statistics.js';
import type { QueryContext } from './index.js';

/** How recent "recent lateness" is, as the metrics report it. */
const RECENT_MS = 5 * 60_000;

/** Where the read side stands: each model's checkpoint, how far behind the log it is, a replay under way. */
export const queryStatus = async ({ db, store, readSide }: QueryContext) => {
  const head = Number(await store.headPosition());
  const position = readSide.projector.position;
  return {
    position,
    head,
    /** Positions between the models and the head; other streams' events count too, so a small lag can stay. */
    lag: Math.max(0, head - position),
    undecodable: readSide.projector.undecodable,
    models: db.models.map(({ model }) => ({ ...db.state(model.name) })),
    replay: readSide.replayProgress,
    feeds: readSide.feeds.size,
  };
};

/** The figures `/metrics` reports about the cluster's work, from the read models (every node's fires). */
export const queryReadMetrics = ({ db, readSide }: QueryContext) => {
  const totalsRecord = db.db.prepare(`SELECT * FROM "${db.tableName('stats', 'totals')}"`).get();
  const totals = totalsRecord
    ? (db.schema('stats', 'totals').fromRecord(totalsRecord as Record<string, unknown>) as StatsTotalsRow)
    : null;
  const board = db.tableName('board', 'tasks');
  const lifecycles = db.db
    .prepare(`SELECT lifecycle, count(*) AS n FROM "${board}" WHERE status <> 'absent' GROUP BY lifecycle`)
    .all() as Array<{ lifecycle: string; n: number }>;
  const failing = db.db
    .prepare(`SELECT count(*) FROM "${board}" WHERE failureStreak > 0 AND status <> 'deleted'`)
    .pluck()
    .get() as number;
  const inFlight = (db.db.prepare(`SELECT coalesce(sum(inFlight), 0) FROM "${board}"`).pluck().get() as number) ?? 0;
  const since = db.state('stats').watermark - RECENT_MS;
  const recent = db.db
    .prepare(`SELECT * FROM "${db.tableName('stats', 'minute')}" WHERE taskId = ? AND bucketStart >= ?`)
    .all(ALL_TASKS, since - (since % 60_000))
    .map((r) => db.schema('stats', 'minute').fromRecord(r as Record<string, unknown>) as StatsBucketRow);
  const histogram = recent.reduce((h, r) => mergeHistograms(h, r.latenessHistogram), [] as number[]);
  const max = recent.reduce<number | null>(
    (m, r) => (r.latenessMaxMs === null ? m : Math.max(m ?? 0, r.latenessMaxMs)),
    null,
  );
  return {
    totals,
    tasks: Object.fromEntries(lifecycles.map((l) => [l.lifecycle, l.n])),
    failing,
    inFlight,
    recentLateness: {
      p50Ms: max === null ? null : quantile(histogram, 0.5, max),
      p99Ms: max === null ? null : quantile(histogram, 0.99, max),
      maxMs: max,
    },
    position: readSide.projector.position,
    undecodable: readSide.projector.undecodable,
  };
};
