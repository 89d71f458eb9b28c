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

export interface Coordinator {
  readonly nodeId: string;
  start(): Promise<void>;
  /** The lease this node holds for the task's slot, or null when it must not fire the task. Cheap. */
  leaseFor(taskId: string): Lease | null;
  readonly events$: Observable<CoordinatorEvent>;
  stop(): Promise<void>;
}
