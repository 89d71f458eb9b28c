import type { AuditAction, AuditEntryRow } from '../../../domain/projections/auditIndex.js';
import type { ReadModelDb } from '../readModelDb.js';
import { isoOrNull, pageOf } from './page.js';
import { sqlFilter } from './sqlFilter.js';

export type AuditArgs = {
  task?: string;
  actor?: string;
  action?: AuditAction[];
  since?: number;
  until?: number;
  /** The (at, taskId, revision) of the last row of the previous page. */
  cursor?: [number, string, number];
  limit: number;
};

export const auditView = (r: AuditEntryRow) => ({
  taskId: r.taskId,
  revision: r.revision,
  at: isoOrNull(r.at),
  action: r.action,
  actor: r.actor,
  node: r.node,
  reason: r.reason,
  correlationId: r.correlationId,
  changes: r.changes,
  spec: r.spec,
  fireId: r.fireId,
});
export type AuditView = ReturnType<typeof auditView>;

const entriesOf = (db: ReadModelDb, where: ReturnType<typeof sqlFilter>, order: 'ASC' | 'DESC', limit: number) =>
  db.db
    .prepare(
      `SELECT * FROM "${db.tableName('audit', 'entries')}" ${where.sql} ORDER BY at ${order}, taskId ${order}, revision ${order} LIMIT ?`,
    )
    .all(...where.params, limit)
    .map((r) => db.schema('audit', 'entries').fromRecord(r as Record<string, unknown>) as AuditEntryRow);

/** Who did what to which task, when, where and why: newest first. */
export const queryAudit = (db: ReadModelDb, args: AuditArgs) => {
  const where = sqlFilter()
    .eq('taskId', args.task)
    .eq('actor', args.actor)
    .in('action', args.action)
    .atLeast('at', args.since)
    .below('at', args.until)
    .before(['at', 'taskId', 'revision'], args.cursor);
  const rows = entriesOf(db, where, 'DESC', args.limit + 1);
  const page = pageOf(rows, args.limit, (r) => [r.at, r.taskId, r.revision], auditView);
  return { entries: page.items, next: page.next };
};

/** A task's definition history, oldest first: every change with what it changed. */
export const queryChanges = (db: ReadModelDb, args: { task: string; limit: number; cursor?: [number] }) => {
  const where = sqlFilter().eq('taskId', args.task).after(['revision'], args.cursor);
  const rows = db.db
    .prepare(`SELECT * FROM "${db.tableName('audit', 'entries')}" ${where.sql} ORDER BY revision LIMIT ?`)
    .all(...where.params, args.limit + 1)
    .map((r) => db.schema('audit', 'entries').fromRecord(r as Record<string, unknown>) as AuditEntryRow);
  const page = pageOf(rows, args.limit, (r) => [r.revision], auditView);
  return { taskId: args.task, changes: page.items, next: page.next };
};
