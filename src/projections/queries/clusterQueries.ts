import type { ClusterEntryKind, ClusterEntryRow } from '../../../domain/projections/clusterHistory.js';
import type { ReadModelDb } from '../readModelDb.js';
import { isoOrNull, pageOf } from './page.js';
import { sqlFilter } from './sqlFilter.js';

export type ClusterHistoryArgs = {
  kind?: ClusterEntryKind[];
  node?: string;
  task?: string;
  since?: number;
  until?: number;
  cursor?: [number];
  limit: number;
};

const entryView = (r: ClusterEntryRow) => ({
  position: r.position,
  at: isoOrNull(r.at),
  kind: r.kind,
  node: r.node,
  previousNode: r.previousNode,
  taskId: r.taskId,
  epoch: r.epoch,
  reason: r.reason,
  details: r.details,
});

/** Joins, leaves, leader changes, slot moves and takeovers: newest first. */
export const queryClusterHistory = (db: ReadModelDb, args: ClusterHistoryArgs) => {
  const where = sqlFilter()
    .in('kind', args.kind)
    .where(
      args.node === undefined ? '1' : '(node = ? OR previousNode = ?)',
      ...(args.node === undefined ? [] : [args.node, args.node]),
    )
    .eq('taskId', args.task)
    .atLeast('at', args.since)
    .below('at', args.until)
    .before(['position'], args.cursor);
  const rows = db.db
    .prepare(`SELECT * FROM "${db.tableName('cluster', 'entries')}" ${where.sql} ORDER BY position DESC LIMIT ?`)
    .all(...where.params, args.limit + 1)
    .map((r) => db.schema('cluster', 'entries').fromRecord(r as Record<string, unknown>) as ClusterEntryRow);
  const page = pageOf(rows, args.limit, (r) => [r.position], entryView);
  return { entries: page.items, next: page.next };
};
