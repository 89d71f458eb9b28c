import type { FastifyInstance } from 'fastify';
import { assignSlots, slotCountsOf, slotOf } from '../../domain/cluster/index.js';
import { NotFoundError } from '../../domain/errors/index.js';
import type { SchedulerNode } from '../node/schedulerNode.js';

/**
 * `GET /api/cluster`: the cluster as this node sees it — members, how the slots divide among them,
 * and how many live tasks each one holds by that division.
 */
export const clusterRoutes = (node: SchedulerNode) => async (app: FastifyInstance) => {
  app.get('/api/cluster', async () => {
    const view = node.cluster();
    if (!view) throw new NotFoundError('cluster view', node.nodeId);
    const live = [...node.tasks()].filter((r) => r.state.status === 'active' || r.state.status === 'paused');
    const owners =
      view.slotCount !== null && view.members.length > 0 ? assignSlots(view.slotCount, view.members) : null;
    const tasksPerNode: Record<string, number> = {};
    for (const record of live) {
      const owner = owners ? owners[slotOf(record.taskId, view.slotCount as number)] : view.nodeId;
      if (owner !== undefined) tasksPerNode[owner] = (tasksPerNode[owner] ?? 0) + 1;
    }
    return {
      ...view,
      leader: null,
      slotsPerNode: owners ? Object.fromEntries(slotCountsOf(owners)) : null,
      tasksPerNode,
    };
  });
};
