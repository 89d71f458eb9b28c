import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BehaviorSubject, Subject } from 'rxjs';
import { type RunOn, isPinned, matchesRunOn } from '../../domain/cluster/index.js';
import type { ClusterMember, ClusterView, Coordinator, CoordinatorEvent, Lease, OrphanedLease } from './coordinator.js';

/**
 * Single-node coordination: this node holds every slot. Its epoch must still grow across restarts
 * (fencing compares epochs in the log), so it is kept in `<dataDir>/epoch`, fsynced, and raised past
 * the highest epoch the log has seen.
 */
export class LocalCoordinator implements Coordinator {
  readonly nodeId: string;
  readonly events$ = new Subject<CoordinatorEvent>();
  readonly members$: BehaviorSubject<readonly ClusterMember[]>;
  readonly leader$: BehaviorSubject<string | null>;
  readonly #file: string;
  readonly #minEpoch: () => number;
  #lease: Lease | null = null;
  /** Tasks pinned elsewhere than this node: held by nobody. */
  readonly #unplaceable = new Set<string>();

  /** `minEpoch`: the highest epoch already recorded in the log (read after recovery). */
  constructor(options: { nodeId: string; dataDir: string; minEpoch: () => number; labels?: Record<string, string> }) {
    this.nodeId = options.nodeId;
    this.#file = join(options.dataDir, 'epoch');
    this.#minEpoch = options.minEpoch;
    this.leader$ = new BehaviorSubject<string | null>(this.nodeId);
    this.members$ = new BehaviorSubject<readonly ClusterMember[]>([
      { id: this.nodeId, weight: 1, labels: options.labels ?? {} },
    ]);
  }

  async start(): Promise<void> {
    const epoch = Math.max(readEpoch(this.#file), this.#minEpoch()) + 1;
    writeDurably(this.#file, String(epoch));
    this.#lease = { node: this.nodeId, epoch };
    this.events$.next({ type: 'connection', state: 'connected' });
    this.events$.next({ type: 'leases-changed' });
  }

  leaseFor(taskId: string): Lease | null {
    return this.#unplaceable.has(taskId) ? null : this.#lease;
  }

  describe(): ClusterView {
    return {
      mode: 'single',
      nodeId: this.nodeId,
      connection: this.#lease ? 'connected' : 'lost',
      slotCount: null,
      members: [...this.members$.value],
      heldSlots: null,
      leader: this.nodeId,
      unplaceable: [...this.#unplaceable].sort(),
      slotOwners: null,
    };
  }

  /** A task pinned to other nodes or labels than this one's runs nowhere, as it would in a cluster without them. */
  place(taskId: string, runOn: RunOn | undefined): void {
    const self = this.members$.value[0]!;
    const changed =
      isPinned(runOn) && !matchesRunOn(self, runOn) ? !this.#unplaceable.has(taskId) : this.#unplaceable.has(taskId);
    if (!changed) return;
    if (this.#unplaceable.has(taskId)) this.#unplaceable.delete(taskId);
    else this.#unplaceable.add(taskId);
  }

  /** The node's one epoch is above everything in the log from its start on. */
  renewLease(): void {}

  async removeOrphanedLeases(): Promise<OrphanedLease[]> {
    return [];
  }

  async publishAssignment(): Promise<null> {
    return null;
  }

  async stop(): Promise<void> {
    this.#lease = null;
    this.events$.next({ type: 'leases-changed' });
    this.events$.complete();
    this.members$.complete();
    this.leader$.complete();
  }
}

const readEpoch = (file: string): number => {
  try {
    const n = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
};

const writeDurably = (file: string, text: string): void => {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
};
