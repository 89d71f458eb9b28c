import { z } from 'zod';
import type { ClusterEventType } from '../cluster/events.js';
import type { TaskEventType } from '../task/events.js';
import { toMillis } from '../time/instant.js';
import type { ProjectedEvent, ReadModel, RowWrite } from './readModel.js';

/**
 * The cluster's history: every event of `kairos-cluster` (leaders, members joining and leaving, slot
 * moves, orphaned leases removed, pinned tasks nobody may hold) and every change of a task's owner, with
 * its reason (`start`, `node-lost`, `rebalance`, `drain`, `recovered`, or a release's `shutdown`), in log
 * order: "what happened to the cluster, and who took over what, and why".
 */

export const ClusterEntryKind = {
  leaderElected: 'leader-elected',
  nodeJoined: 'node-joined',
  nodeLeft: 'node-left',
  slotsMoved: 'slots-moved',
  orphanedLeaseRemoved: 'orphaned-lease-removed',
  tasksUnplaceable: 'tasks-unplaceable',
  taskAssigned: 'task-assigned',
  taskReassigned: 'task-reassigned',
  taskReleased: 'task-released',
} as const;
export type ClusterEntryKind = (typeof ClusterEntryKind)[keyof typeof ClusterEntryKind];

export const ClusterEntryRow = z.object({
  position: z.number(),
  /** When it happened (the event's `at`), epoch ms. */
  at: z.number(),
  kind: z.enum(ClusterEntryKind),
  /**
   * The node the event is about — the new leader, the member that joined or left, the task's new owner,
   * the owner that released it; null for slot moves, orphaned leases and unplaceable tasks.
   */
  node: z.string().nullable(),
  /** The leader before a new one, or the owner before a reassignment; null otherwise. */
  previousNode: z.string().nullable(),
  /** The task of an ownership change; null for cluster events. */
  taskId: z.string().nullable(),
  /** The lease epoch of an ownership change (the new owner's, or the releaser's); null for cluster events. */
  epoch: z.number().nullable(),
  /** Why the owner changed; null for cluster events. */
  reason: z.string().nullable(),
  /** The rest of the event's data: a member's address, weight, labels, version; slot counts; the lease; … */
  details: z.record(z.string(), z.unknown()),
});
export type ClusterEntryRow = z.output<typeof ClusterEntryRow>;

type ClusterRows = { entries: ClusterEntryRow };

const KIND_OF: Partial<Record<ClusterEventType | TaskEventType, ClusterEntryKind>> = {
  LeaderElected: 'leader-elected',
  NodeJoined: 'node-joined',
  NodeLeft: 'node-left',
  SlotsMoved: 'slots-moved',
  OrphanedLeaseRemoved: 'orphaned-lease-removed',
  TasksUnplaceable: 'tasks-unplaceable',
  TaskAssigned: 'task-assigned',
  TaskReassigned: 'task-reassigned',
  TaskReleased: 'task-released',
};

/** Data fields with a column of their own (`previous` is a leader's, `previousNode` an owner's). */
type Columned = {
  v?: unknown;
  at: string;
  taskId?: string;
  node?: string;
  previous?: string | null;
  previousNode?: string;
  epoch?: number;
  reason?: string;
};

const evolve = (_rows: unknown, e: ProjectedEvent): RowWrite<ClusterRows>[] => {
  const kind = KIND_OF[e.event.type];
  if (kind === undefined) return [];
  const { v: _v, at, taskId, node, previous, previousNode, epoch, reason, ...details } = e.event.data as Columned;
  return [
    {
      table: 'entries',
      row: {
        position: e.position,
        at: toMillis(at),
        kind,
        node: node ?? null,
        previousNode: previous ?? previousNode ?? null,
        taskId: taskId ?? null,
        epoch: epoch ?? null,
        reason: reason ?? null,
        details,
      },
    },
  ];
};

/** The cluster history read model (`cluster`): table `entries`, one row per event, keyed by log position. */
export const clusterHistory = (): ReadModel<ClusterRows> => ({
  name: 'cluster',
  version: 1,
  reads: 'tasks-and-cluster',
  tables: { entries: { row: ClusterEntryRow, key: ['position'] } },
  evolve,
});
