import type { Observable } from 'rxjs';

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
  | { type: 'leases-changed' };

/** A live member as the coordination sees it (`members/<nodeId>`). */
export type ClusterMember = { id: string; address?: string; weight: number; labels: Record<string, string> };

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
};

export interface Coordinator {
  readonly nodeId: string;
  start(): Promise<void>;
  /** The lease this node holds for the task's slot, or null when it must not fire the task. Cheap. */
  leaseFor(taskId: string): Lease | null;
  readonly events$: Observable<CoordinatorEvent>;
  /** The live members (this node included), now and after every change; completes on stop. */
  readonly members$: Observable<readonly ClusterMember[]>;
  describe(): ClusterView;
  stop(): Promise<void>;
}
