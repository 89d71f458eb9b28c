import { z } from 'zod';
import { NodeId } from './members.js';

/**
 * Cluster-level facts, recorded by the leader in one stream (`kairos-cluster`, design §2): who led,
 * who joined and left, how the slots moved, which orphaned leases were removed, and which pinned tasks
 * no live node may hold. Each event's `data` carries a version `v`, like the task events.
 */

const Iso = z.iso.datetime({ offset: true });
const count = z.number().int().nonnegative();
const perNode = z.record(z.string(), count);

const event = <T extends string, D extends z.ZodRawShape>(type: T, data: D) =>
  z.object({ type: z.literal(type), data: z.object({ v: z.literal(1), ...data, at: Iso }) });

export const LeaderElected = event('LeaderElected', { node: NodeId, previous: NodeId.nullable() });
export const NodeJoined = event('NodeJoined', {
  node: NodeId,
  address: z.string().optional(),
  weight: z.number().positive(),
  labels: z.record(z.string(), z.string()),
  version: z.string().optional(),
});
export const NodeLeft = event('NodeLeft', { node: NodeId });
/** A membership change moved slots: how many, who gained and lost how many, and the division after it. */
export const SlotsMoved = event('SlotsMoved', {
  slotCount: z.number().int().positive(),
  moved: count,
  gained: perNode,
  lost: perNode,
  slotsPerNode: perNode,
});
/** A lease znode held by a session of no live member, deleted by the leader so its owner can take it. */
export const OrphanedLeaseRemoved = event('OrphanedLeaseRemoved', { lease: z.string().min(1), session: z.string() });
/** The pinned tasks no live member may hold (every matching node is down); an empty list clears the alert. */
export const TasksUnplaceable = event('TasksUnplaceable', {
  count,
  /** At most MAX_LISTED_TASKS ids, sorted; `count` is the full number. */
  taskIds: z.array(z.string()),
});

export const MAX_LISTED_TASKS = 100;

export const ClusterEvent = z.discriminatedUnion('type', [
  LeaderElected,
  NodeJoined,
  NodeLeft,
  SlotsMoved,
  OrphanedLeaseRemoved,
  TasksUnplaceable,
]);
export type ClusterEvent = z.infer<typeof ClusterEvent>;
export type ClusterEventType = ClusterEvent['type'];
export type ClusterEventData<T extends ClusterEventType> = Extract<ClusterEvent, { type: T }>['data'];
