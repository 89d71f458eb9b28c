import type { Observable } from 'rxjs';
import type { RunOn } from '../../domain/cluster/index.js';

/**
 * The coordination port (design §4): who may fire which task. A node fires a task only while it holds
 * the lease of the task's slot; the lease's epoch is the fencing token recorded in the task stream.
 */
export type Lease = { node: string; epoch: number };

/** connected: leases valid. suspended: connection lost, session may live — stop firing. lost: session expired. */
export type ConnectionState = 'connected' | 'suspended' | 'lost';

export type CoordinatorEvent =
  | { type: 'connection'; state: ConnectionState }
  /** The set of slots this node holds changed; re-check every task's lease. */
  | { type: 'leases-changed' }
  /** The set of pinned tasks no live member may hold changed. */
  | { type: 'unplaceable-changed' };

/** A live member as the coordination sees it (`members/<nodeId>`). */
export type ClusterMember = {
  id: string;
  address?: string;
  weight: number;
  labels: Record<string, string>;
  version?: string;
};

/** What a node knows of its cluster, for `GET /api/cluster` and `kairos cluster status`. */
export type ClusterView = {
  mode: 'single' | 'zookeeper';
  nodeId: string;
  connection: ConnectionState;
  /** Slots of the cluster; null in single-node mode (the node holds every task). */
  slotCount: number | null;
  /** Live members as this node last saw them. */
  members: ClusterMember[];
  /** How many slots this node holds a lease on. */
  heldSlots: number | null;
  /** The member that leads housekeeping, as this node last saw it. */
  leader: string | null;
  /** Pinned tasks no live member may hold (this node's view; the leader records changes). */
  unplaceable: string[];
  /** The owner of every slot as this node applies it (the leader's published assignment); null in single-node mode. */
  slotOwners: string[] | null;
};

/** A lease znode held by the session of no live member, removed by the leader. */
export type OrphanedLease = { lease: string; session: string };

export interface Coordinator {
  readonly nodeId: string;
  start(): Promise<void>;
  /** The lease this node holds for the task's slot, or null when it must not fire the task. Cheap. */
  leaseFor(taskId: string): Lease | null;
  readonly events$: Observable<CoordinatorEvent>;
  /** The live members (this node included), now and after every change; completes on stop. */
  readonly members$: Observable<readonly ClusterMember[]>;
  describe(): ClusterView;
  /** The leader's node id (null while there is none), now and after every change; completes on stop. */
  readonly leader$: Observable<string | null>;
  /**
   * Where a task may run (its `runOn`), told by the node on every definition change: a pinned task is held
   * through a lease of its own by a matching member; undefined makes it an ordinary slot task again.
   */
  place(taskId: string, runOn: RunOn | undefined): void;
  /**
   * The log records an epoch above this node's lease for the task although the node holds the lease now
   * (the task was held under another lease meanwhile, e.g. while pinned): take a fresh, higher epoch.
   */
  renewLease(taskId: string): void;
  /** Leader duty: deletes leases whose session belongs to no live member, and says which. */
  removeOrphanedLeases(): Promise<OrphanedLease[]>;
  /**
   * Leader duty: publishes the slot assignment balanced for these task counts per slot, when it differs
   * from the one in force. Resolves with the owners as published before (empty for the first) and after,
   * or null when nothing was published.
   */
  publishAssignment(load: ArrayLike<number>): Promise<{ before: string[]; after: string[] } | null>;
  stop(): Promise<void>;
}
