import type { FastifyInstance } from 'fastify';
import { ErrorCode, KairosError, parseOrThrow } from '../../domain/errors/index.js';
import type { Clock } from '../clock/clock.js';
import type { SchedulerNode } from '../node/schedulerNode.js';
import type { ReadSidePort } from '../projections/host/readSidePort.js';
import type { QueryArgs, QueryName, QueryResult } from '../projections/queries/index.js';
import { AuditQuery, ClusterHistoryQuery, FiresQuery, StatsQuery } from './readQueries.js';

/** Thrown when the node runs without a read side (`KAIROS_READ_SIDE=off`). */
export const readSideOff = (): KairosError =>
  new KairosError(ErrorCode.unavailable, 'the read side is off on this node (KAIROS_READ_SIDE=off): no queries', {
    readSide: 'off',
  });

/**
 * Queries through the read side with read-your-writes: a query waits until the read models include the
 * last change an operator made through this node (`appended$` of anything but the node's own decisions),
 * so `kairos task add` then `kairos task list` shows the task. Fires the node records do not count:
 * waiting for those would make every query wait for the projections.
 */
export const consistentReads = (readSide: ReadSidePort | null, node: SchedulerNode) => {
  let lastWrite = 0;
  node.appended$.subscribe(({ actor, position }) => {
    if (!actor.startsWith('node:') && Number(position) > lastWrite) lastWrite = Number(position);
  });
  return <N extends QueryName>(name: N, args: QueryArgs<N>): Promise<QueryResult<N>> => {
    if (!readSide) throw readSideOff();
    return readSide.query(name, args, lastWrite);
  };
};
export type ReadQuery = ReturnType<typeof consistentReads>;

/** The read side's cross-task query routes (design §6, §7): fires, audit, stats, cluster history. */
export const readRoutes = (read: ReadQuery, clock: Clock) => async (app: FastifyInstance) => {
  app.get('/api/fires', async (request) => read('fires', parseOrThrow(FiresQuery(clock.now()), request.query)));

  app.get('/api/audit', async (request) => read('audit', parseOrThrow(AuditQuery(clock.now()), request.query)));

  app.get('/api/stats', async (request) => read('stats', parseOrThrow(StatsQuery(clock.now()), request.query)));

  app.get('/api/cluster/history', async (request) =>
    read('clusterHistory', parseOrThrow(ClusterHistoryQuery(clock.now()), request.query)),
  );
};
