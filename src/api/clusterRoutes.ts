import type { FastifyInstance } from 'fastify';
import { isPinned, ownerOf, slotCountsOf, slotOf } from '../../domain/cluster/index.js';
import { NotFoundError } from '../../domain/errors/index.js';
import type { SchedulerNode } from '../node/schedulerNode.js';

/**
 * `GET /api/cluster`: the cluster as this node sees it — members, leader, how the slots divide among
 * them, how many live tasks each one holds by that division (pinned tasks by their `runOn`), and the
 * pinned tasks no live member may hold.
 */
export const clusterRoutes = (node: SchedulerNode) => async (app: FastifyInstance) => {
  app.get('/api/cluster', async () => {
    const view = node.cluster();
    if (!view) throw new NotFoundError('cluster view', node.nodeId);
    const live = [...node.tasks()].filter((r) => r.state.status === 'active' || r.state.status === 'paused');
    const owners = view.slotOwners && view.slotOwners.length > 0 ? view.slotOwners : null;
    const tasksPerNode: Record<string, number> = {};
    const unplaceable = new Set(view.unplaceable);
    for (const record of live) {
      if (unplaceable.has(record.taskId)) continue;
      const runOn = record.state.spec?.runOn;
      const owner = !owners
        ? view.nodeId
        : isPinned(runOn)
          ? ownerOf(record.taskId, runOn, view.slotCount as number, view.members)
          : owners[slotOf(record.taskId, view.slotCount as number)];
      if (owner) tasksPerNode[owner] = (tasksPerNode[owner] ?? 0) + 1;
    }
    const { slotOwners: _owners, ...rest } = view;
    return {
      ...rest,
      slotsPerNode: owners ? Object.fromEntries(slotCountsOf(owners)) : null,
      tasksPerNode,
    };
  });
};
