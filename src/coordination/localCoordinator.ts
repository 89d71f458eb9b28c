import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BehaviorSubject, Subject } from 'rxjs';
import type { ClusterMember, ClusterView, Coordinator, CoordinatorEvent, Lease } from './coordinator.js';

/**
 * Single-node coordination: this node holds every slot. Its epoch must still grow across restarts
 * (fencing compares epochs in the log), so it is kept in `<dataDir>/epoch`, fsynced, and raised past
 * the highest epoch the log has seen.
 */
export class LocalCoordinator implements Coordinator {
  readonly nodeId: string;
  readonly events$ = new Subject<CoordinatorEvent>();
  readonly members$: BehaviorSubject<readonly ClusterMember[]>;
  readonly #file: string;
  readonly #minEpoch: () => number;
  #lease: Lease | null = null;

  /** `minEpoch`: the highest epoch already recorded in the log (read after recovery). */
  constructor(options: { nodeId: string; dataDir: string; minEpoch: () => number }) {
    this.nodeId = options.nodeId;
    this.#file = join(options.dataDir, 'epoch');
    this.#minEpoch = options.minEpoch;
    this.members$ = new BehaviorSubject<readonly ClusterMember[]>([{ id: this.nodeId, weight: 1, labels: {} }]);
  }

  async start(): Promise<void> {
    const epoch = Math.max(readEpoch(this.#file), this.#minEpoch()) + 1;
    writeDurably(this.#file, String(epoch));
    this.#lease = { node: this.nodeId, epoch };
    this.events$.next({ type: 'connection', state: 'connected' });
    this.events$.next({ type: 'leases-changed' });
  }

  leaseFor(_taskId: string): Lease | null {
    return this.#lease;
  }

  describe(): ClusterView {
    return {
      mode: 'single',
      nodeId: this.nodeId,
      connection: this.#lease ? 'connected' : 'lost',
      slotCount: null,
      members: [...this.members$.value],
      heldSlots: null,
    };
  }

  async stop(): Promise<void> {
    this.#lease = null;
    this.events$.next({ type: 'leases-changed' });
    this.events$.complete();
    this.members$.complete();
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
