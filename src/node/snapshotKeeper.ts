import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock/clock.js';
import type { EventStore } from '../store/eventStore.js';
import { readSnapshot, writeSnapshot } from './stateSnapshot.js';
import type { TaskRecords } from './taskRecords.js';

export type SnapshotOptions = {
  /** Where the node keeps its state snapshot (`<dataDir>/node-state.snapshot`). */
  file: string;
  /** How often a running node saves one, when the log moved since the last. */
  everyMs: number;
};

/**
 * The node's state snapshots: loaded at start when they can be trusted for this log (else the whole
 * log is replayed, and the log line says why), saved on a graceful stop and every `everyMs` while the
 * log moves — so a start after a crash folds at most that much of the log's tail.
 */
export class SnapshotKeeper {
  readonly #options: SnapshotOptions;
  readonly #store: EventStore;
  readonly #records: TaskRecords;
  readonly #clock: Clock;
  readonly #log: Logger;
  #timer: TimerHandle | null = null;
  #saving: Promise<void> | null = null;
  #savedAt = -1n;

  readonly #settled: () => Promise<void>;

  constructor(
    options: SnapshotOptions,
    deps: {
      store: EventStore;
      records: TaskRecords;
      clock: Clock;
      logger: Logger;
      /** Settles once the decisions under way now have (their events applied to the records). */
      settled: () => Promise<void>;
    },
  ) {
    this.#options = options;
    this.#settled = deps.settled;
    this.#store = deps.store;
    this.#records = deps.records;
    this.#clock = deps.clock;
    this.#log = deps.logger;
  }

  /** Restores the records from the snapshot if it can be trusted; true when it did. */
  async load(): Promise<boolean> {
    const started = this.#clock.now();
    try {
      const read = await readSnapshot(this.#options.file, this.#store);
      if (!read.ok) {
        this.#log.info(
          { file: this.#options.file, problem: read.problem },
          'no usable state snapshot: replaying the whole log',
        );
        return false;
      }
      this.#records.restore(read.snapshot);
      this.#savedAt = read.snapshot.position;
      this.#log.info(
        {
          tasks: read.snapshot.records.length,
          position: String(read.snapshot.position),
          ms: this.#clock.now() - started,
        },
        'state snapshot loaded',
      );
      return true;
    } catch (err) {
      this.#log.warn(
        { err, file: this.#options.file },
        'the state snapshot could not be read: replaying the whole log',
      );
      return false;
    }
  }

  /** Saves one every `everyMs` while the log moves. */
  start(): void {
    this.#timer = this.#clock.setTimer(() => {
      void this.save().finally(() => this.#timer !== null && this.start());
    }, this.#options.everyMs);
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }

  /**
   * Saves the records as they are now, unless nothing moved since the last save; never throws (logs).
   * A save under way began earlier: it is waited for, then this one is made.
   */
  async save(): Promise<void> {
    while (this.#saving) await this.#saving;
    this.#saving = this.#write().finally(() => (this.#saving = null));
    await this.#saving;
  }

  async #write(): Promise<void> {
    const position = this.#records.position;
    if (position === this.#savedAt) return;
    const started = this.#clock.now();
    try {
      // The log subscription passes over the node's own appends, which the append applies as it
      // resolves: one still resolving may sit at or before `position`. Every record must hold it.
      await this.#settled();
      const outcome = await writeSnapshot(this.#options.file, this.#store, {
        position,
        maxEpoch: this.#records.maxEpoch,
        records: this.#records.snapshotRecords(),
        lastFollowed: () => this.#records.lastFollowed,
      });
      if (outcome !== 'written') return;
      this.#savedAt = position;
      this.#log.info(
        { tasks: this.#records.size, position: String(position), ms: this.#clock.now() - started },
        'state snapshot saved',
      );
    } catch (err) {
      this.#log.warn({ err, file: this.#options.file }, 'could not save the state snapshot');
    }
  }
}
