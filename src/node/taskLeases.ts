import { isPinned } from '../../domain/cluster/index.js';
import type { Lease } from '../../domain/task/decide.js';
import type { Coordinator } from '../coordination/coordinator.js';
import type { TaskRecord } from './taskRecord.js';
import type { TaskRecords } from './taskRecords.js';

/**
 * What this node may do with each task under the leases its coordinator holds: whether it may fire
 * it (holds the lease, and no newer owner is recorded), the reason a claim would record, and where a
 * task may run (pinned tasks are placed through leases of their own).
 */
export class TaskLeases {
  readonly #nodeId: string;
  readonly #records: TaskRecords;
  readonly #running: () => boolean;
  #coordinator: Coordinator | null = null;
  /** Ids of the live members, for the reason of an ownership claim. */
  #live = new Set<string>();

  constructor(options: { nodeId: string; records: TaskRecords; running: () => boolean }) {
    this.#nodeId = options.nodeId;
    this.#records = options.records;
    this.#running = options.running;
  }

  /** From start on: the coordinator is built once recovery knows the highest epoch. */
  set coordinator(coordinator: Coordinator) {
    this.#coordinator = coordinator;
  }

  set liveMembers(ids: Iterable<string>) {
    this.#live = new Set(ids);
  }

  leaseOf(taskId: string): Lease | null {
    return this.#running() ? (this.#coordinator?.leaseFor(taskId) ?? null) : null;
  }

  /**
   * The lease with the reason a claim made under it would record: the recorded owner is this node (a
   * restart, a new session), a live member (the slot moved: rebalance) or gone (node lost). After a
   * graceful release the decider records the hand-off itself.
   */
  claimingLease(taskId: string): Lease | null {
    const lease = this.leaseOf(taskId);
    const owner = this.#records.get(taskId)?.state.owner;
    if (!lease || !owner || owner.epoch === lease.epoch) return lease;
    const reason = owner.node === this.#nodeId ? 'recovered' : this.#live.has(owner.node) ? 'rebalance' : 'node-lost';
    return { ...lease, reason };
  }

  /** Holds the lease, and no newer owner is recorded (else this node is a zombie for the task: fenced). */
  mayFire(record: TaskRecord, lease = this.leaseOf(record.taskId)): boolean {
    return lease !== null && record.state.epochFloor <= lease.epoch;
  }

  /** Held under another lease meanwhile (say, while pinned elsewhere): this lease needs a newer epoch. */
  renewIfOutdated(record: TaskRecord, lease: Lease | null): void {
    if (lease && record.state.epochFloor > lease.epoch && record.state.status !== 'deleted')
      this.#coordinator?.renewLease(record.taskId);
  }

  /** Tells the coordinator where a live task may run; a deleted task needs no lease of its own. */
  place(record: TaskRecord): void {
    const { status, spec } = record.state;
    const live = status === 'active' || status === 'paused';
    if (spec?.runOn || !live) this.#coordinator?.place(record.taskId, live ? spec?.runOn : undefined);
  }

  /** The tasks this node owns under the leases it holds now, with nothing in flight. */
  owned(): Array<{ taskId: string; lease: Lease }> {
    const coordinator = this.#coordinator;
    const owned: Array<{ taskId: string; lease: Lease }> = [];
    if (!coordinator) return owned;
    for (const record of this.#records.values()) {
      const owner = record.state.owner;
      if (!owner || owner.node !== this.#nodeId || record.state.inFlight.length > 0) continue;
      const lease = coordinator.leaseFor(record.taskId);
      if (lease && lease.epoch === owner.epoch) owned.push({ taskId: record.taskId, lease });
    }
    return owned;
  }

  /** Live tasks per slot, pinned ones excluded (they are held through leases of their own). */
  slotLoad(slotCount: number): Uint32Array {
    const load = new Uint32Array(slotCount);
    for (const record of this.#records.values()) {
      const { status, spec } = record.state;
      if ((status === 'active' || status === 'paused') && !isPinned(spec?.runOn)) load[record.slotIn(slotCount)]!++;
    }
    return load;
  }
}
