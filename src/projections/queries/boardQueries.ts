import type { TaskBoardRow } from '../../../domain/projections/taskBoard.js';
import { taskViewOf } from '../../../domain/task/view.js';
import type { ReadModelDb } from '../readModelDb.js';
import { isoOrNull, pageOf } from './page.js';
import { sqlFilter } from './sqlFilter.js';

export const BoardSort = ['id', 'name', 'status', 'owner', 'nextFireAt', 'lastFireAt', 'failureStreak'] as const;
export type BoardSort = (typeof BoardSort)[number];

export const BoardStatus = ['active', 'paused', 'deleted', 'running', 'idle'] as const;
export type BoardStatus = (typeof BoardStatus)[number];

export type BoardArgs = {
  status?: BoardStatus[];
  owner?: string;
  /** Only tasks whose last fire failed (a failure streak). */
  failing?: boolean;
  /** Text searched in the id, name, topic and webhook URL. */
  q?: string;
  topic?: string;
  /** `key=value` labels the task must carry. */
  labels?: Record<string, string>;
  sort: BoardSort;
  order: 'asc' | 'desc';
  cursor?: [string | number | null, string];
  limit: number;
};

/**
 * What each sort orders by. Nullable columns sort with nulls last either way (a task with no next fire
 * is not "soonest"), so the expression replaces null by a bound beyond every real value.
 */
const SORT_EXPRESSION: Record<BoardSort, { asc: string; desc: string }> = {
  id: { asc: 'taskId', desc: 'taskId' },
  name: { asc: 'lower(name)', desc: 'lower(name)' },
  status: { asc: 'lifecycle', desc: 'lifecycle' },
  owner: { asc: 'coalesce(owner, char(1114111))', desc: "coalesce(owner, '')" },
  nextFireAt: { asc: 'coalesce(nextFireAt, 9e15)', desc: 'coalesce(nextFireAt, -9e15)' },
  lastFireAt: { asc: 'coalesce(lastFireAt, 9e15)', desc: 'coalesce(lastFireAt, -9e15)' },
  failureStreak: { asc: 'failureStreak', desc: 'failureStreak' },
};

/** A board row as the API shows a task: the node's task view plus who paused or deleted it and why. */
export const boardView = (row: TaskBoardRow) => {
  const action = (a: TaskBoardRow['paused']) => a && { by: a.actor, at: isoOrNull(a.at), reason: a.reason };
  return {
    ...taskViewOf(row),
    nextFireAt: isoOrNull(row.nextFireAt),
    paused: action(row.paused),
    deleted: action(row.deleted),
    createdAt: isoOrNull(row.createdAt),
    changedAt: isoOrNull(row.changedAt),
    changedBy: row.changedBy,
    position: row.position,
  };
};
export type BoardView = ReturnType<typeof boardView>;

const likePattern = (text: string): string => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

const filtersOf = (args: BoardArgs) => {
  const where = sqlFilter().where("status <> 'absent'");
  const statuses = args.status?.map((s) => (s === 'running' || s === 'idle' ? ['lifecycle', s] : ['status', s]));
  if (statuses && statuses.length > 0)
    where.where(`(${statuses.map(([column]) => `"${column}" = ?`).join(' OR ')})`, ...statuses.map(([, v]) => v!));
  where.eq('owner', args.owner).eq('topic', args.topic);
  if (args.failing === true) where.where('failureStreak > 0');
  if (args.failing === false) where.where('failureStreak = 0');
  if (args.q !== undefined) {
    const like = likePattern(args.q);
    where.where(
      "(taskId LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' OR topic LIKE ? ESCAPE '\\' OR webhook LIKE ? ESCAPE '\\')",
      like,
      like,
      like,
      like,
    );
  }
  // Matched as a key and a value, not through a JSON path: any character may be in either.
  for (const [key, value] of Object.entries(args.labels ?? {}))
    where.where(
      "EXISTS (SELECT 1 FROM json_each(state, '$.spec.labels') WHERE json_each.key = ? AND json_each.value = ?)",
      key,
      value,
    );
  return where;
};

/** The board: filtered, searched, sorted, a page at a time, with the number of tasks that match. */
export const queryBoard = (db: ReadModelDb, args: BoardArgs) => {
  const table = db.tableName('board', 'tasks');
  const schema = db.schema('board', 'tasks');
  const expression = SORT_EXPRESSION[args.sort][args.order];
  const counted = filtersOf(args);
  const total = db.db
    .prepare(`SELECT count(*) FROM "${table}" ${counted.sql}`)
    .pluck()
    .get(...counted.params) as number;
  const where = filtersOf(args);
  if (args.cursor) where.where(`(${expression}, taskId) ${args.order === 'asc' ? '>' : '<'} (?, ?)`, ...args.cursor);
  const direction = args.order === 'asc' ? 'ASC' : 'DESC';
  const rows = db.db
    .prepare(
      `SELECT *, ${expression} AS sortKey FROM "${table}" ${where.sql} ORDER BY ${expression} ${direction}, taskId ${direction} LIMIT ?`,
    )
    .all(...where.params, args.limit + 1) as Array<Record<string, unknown> & { sortKey: string | number }>;
  const page = pageOf(
    rows,
    args.limit,
    (r) => [r.sortKey, r.taskId as string],
    (r) => boardView(schema.fromRecord(r) as TaskBoardRow),
  );
  return { total, tasks: page.items, next: page.next };
};

/** One task's board row, or undefined. */
export const boardRowOf = (db: ReadModelDb, taskId: string): TaskBoardRow | undefined => {
  const record = db.db.prepare(`SELECT * FROM "${db.tableName('board', 'tasks')}" WHERE taskId = ?`).get(taskId);
  return record
    ? (db.schema('board', 'tasks').fromRecord(record as Record<string, unknown>) as TaskBoardRow)
    : undefined;
};
