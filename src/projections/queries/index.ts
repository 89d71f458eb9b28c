import type { Clock } from '../../clock/clock.js';
import type { EventStore } from '../../store/eventStore.js';
import { verifyStore } from '../../verify/verifyStore.js';
import type { ReadModelDb } from '../readModelDb.js';
import type { ReadSide } from '../readSide.js';
import { queryAudit, queryChanges, type AuditArgs } from './auditQueries.js';
import { queryBoard, type BoardArgs } from './boardQueries.js';
import { queryClusterHistory, type ClusterHistoryArgs } from './clusterQueries.js';
import { queryExplain } from './explainQueries.js';
import { queryFires, queryTaskHistory, type FiresArgs } from './fireQueries.js';
import { queryBoardAt, queryTaskAt } from './pointInTimeQueries.js';
import { queryStats, type StatsArgs } from './statsQueries.js';
import { queryReadMetrics, queryStatus } from './statusQueries.js';

/** What a query runs against. */
export type QueryContext = { db: ReadModelDb; store: EventStore; clock: Clock; readSide: ReadSide };

/**
 * Every read-side query by name: the API asks for one by name with its (validated) arguments,
 * wherever the read side runs. Each returns what the API sends as JSON.
 */
export const queries = {
  fires: (c: QueryContext, args: FiresArgs) => queryFires(c.db, args),
  history: (c: QueryContext, args: { task: string; limit: number }) => queryTaskHistory(c.db, args),
  board: (c: QueryContext, args: BoardArgs) => queryBoard(c.db, args),
  audit: (c: QueryContext, args: AuditArgs) => queryAudit(c.db, args),
  changes: (c: QueryContext, args: { task: string; limit: number; cursor?: [number] }) => queryChanges(c.db, args),
  clusterHistory: (c: QueryContext, args: ClusterHistoryArgs) => queryClusterHistory(c.db, args),
  stats: (c: QueryContext, args: StatsArgs) => queryStats(c.db, args),
  taskAt: (c: QueryContext, args: { task: string; at: number }) => queryTaskAt(c.store, args),
  boardAt: (c: QueryContext, args: BoardArgs & { at: number }) => queryBoardAt(c.store, args),
  explain: (c: QueryContext, args: { task: string; at: number }) => queryExplain(c.store, c.clock, args),
  status: (c: QueryContext, _args: Record<string, never>) => queryStatus(c),
  metrics: (c: QueryContext, _args: Record<string, never>) => queryReadMetrics(c),
  verify: (c: QueryContext, _args: Record<string, never>) => verifyStore(c.store),
};

export type QueryName = keyof typeof queries;
export type QueryArgs<N extends QueryName> = Parameters<(typeof queries)[N]>[1];
export type QueryResult<N extends QueryName> = Awaited<ReturnType<(typeof queries)[N]>>;
