import type { AttemptStatus, FireAttemptRow, TickGapRow } from '../../../domain/projections/fireIndex.js';
import type { ReadModelDb } from '../readModelDb.js';
import { isoOrNull, pageOf } from './page.js';
import { sqlFilter } from './sqlFilter.js';

export type FiresArgs = {
  task?: string;
  status?: AttemptStatus[];
  node?: string;
  trigger?: string[];
  /** Fired at or after / before (epoch ms). */
  since?: number;
  until?: number;
  minLateness?: number;
  /** The (firedAt, position) of the last row of the previous page. */
  cursor?: [number, number];
  limit: number;
};

/** An attempt as the API shows it. */
export const attemptView = (r: FireAttemptRow) => ({
  taskId: r.taskId,
  fireId: r.fireId,
  attempt: r.attempt,
  trigger: r.trigger,
  status: r.status,
  scheduledAt: isoOrNull(r.scheduledAt),
  firedAt: isoOrNull(r.firedAt),
  latenessMs: r.latenessMs,
  node: r.node,
  epoch: r.epoch,
  deadline: isoOrNull(r.deadline),
  outcomeAt: isoOrNull(r.outcomeAt),
  durationMs: r.durationMs,
  willRetryAt: isoOrNull(r.willRetryAt),
  message: r.message,
  answers: r.answers,
  actor: r.actor,
  reason: r.reason,
  position: r.position,
});
export type AttemptView = ReturnType<typeof attemptView>;

const rowsOf = (db: ReadModelDb, sql: string, params: unknown[]): FireAttemptRow[] => {
  const schema = db.schema('fires', 'attempts');
  return db.db
    .prepare(sql)
    .all(...params)
    .map((r) => schema.fromRecord(r as Record<string, unknown>) as FireAttemptRow);
};

/** Attempts across all tasks, newest fired first. */
export const queryFires = (db: ReadModelDb, args: FiresArgs) => {
  const where = sqlFilter()
    .eq('taskId', args.task)
    // With a task, its own index (a few hundred rows a day) beats the status's (every failure of every task).
    .in('status', args.status, args.task !== undefined)
    .eq('node', args.node)
    .in('trigger', args.trigger)
    .atLeast('firedAt', args.since)
    .below('firedAt', args.until)
    .atLeast('latenessMs', args.minLateness)
    .before(['firedAt', 'position'], args.cursor);
  const table = db.tableName('fires', 'attempts');
  const rows = rowsOf(db, `SELECT * FROM "${table}" ${where.sql} ORDER BY firedAt DESC, position DESC LIMIT ?`, [
    ...where.params,
    args.limit + 1,
  ]);
  const page = pageOf(rows, args.limit, (r) => [r.firedAt, r.position], attemptView);
  return { fires: page.items, next: page.next };
};

/** A fire (all its attempts) as `GET /api/tasks/:id/history` shows it. */
const fireOf = (attempts: FireAttemptRow[]) => {
  const first = attempts[0] as FireAttemptRow;
  const last = attempts.at(-1) as FireAttemptRow;
  const final = last.status !== 'in-flight' && last.willRetryAt === null;
  return {
    fireId: first.fireId,
    taskId: first.taskId,
    scheduledAt: isoOrNull(first.scheduledAt),
    firedAt: isoOrNull(first.firedAt),
    node: first.node,
    epoch: first.epoch,
    trigger: first.trigger,
    attempts: last.attempt,
    status: last.willRetryAt !== null ? 'retrying' : last.status,
    latenessMs: first.latenessMs,
    outcomeAt: final ? isoOrNull(last.outcomeAt) : null,
    durationMs: final && last.outcomeAt !== null ? last.outcomeAt - first.firedAt : null,
    message: last.message,
    details: last.answers,
  };
};

const gapView = (g: TickGapRow) => ({
  kind: g.kind,
  after: isoOrNull(g.after),
  until: isoOrNull(g.until),
  count: g.count,
  action: g.action,
  policy: g.policy,
  at: isoOrNull(g.at),
});

/** The newest `limit` fires of a task (first attempts in log order, newest first) and its newest tick gaps. */
export const queryTaskHistory = (db: ReadModelDb, args: { task: string; limit: number }) => {
  const attempts = db.tableName('fires', 'attempts');
  const rows = rowsOf(
    db,
    `SELECT a.* FROM "${attempts}" a JOIN (
       SELECT fireId FROM "${attempts}" WHERE taskId = ? AND attempt = 1 ORDER BY firedAt DESC, position DESC LIMIT ?
     ) f ON a.fireId = f.fireId ORDER BY a.position`,
    [args.task, args.limit],
  );
  const byFire = new Map<string, FireAttemptRow[]>();
  for (const row of rows) byFire.set(row.fireId, [...(byFire.get(row.fireId) ?? []), row]);
  const gapSchema = db.schema('fires', 'gaps');
  const gaps = db.db
    .prepare(`SELECT * FROM "${db.tableName('fires', 'gaps')}" WHERE taskId = ? ORDER BY position DESC LIMIT ?`)
    .all(args.task, args.limit)
    .map((r) => gapView(gapSchema.fromRecord(r as Record<string, unknown>) as TickGapRow));
  return { taskId: args.task, fires: [...byFire.values()].map(fireOf).reverse(), gaps };
};
