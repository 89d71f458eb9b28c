import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import { TASK_STREAM_PREFIX, taskIdOfStream } from '../../domain/task/events.js';
import type { Clock } from '../clock/clock.js';
import type { EventStore, RecordedEvent } from '../store/eventStore.js';
import type { TaskRecord } from './taskRecord.js';
import type { TaskRecords } from './taskRecords.js';

export type LogFollowerOptions = {
  store: EventStore;
  records: TaskRecords;
  clock: Clock;
  logger: Logger;
  /** A record changed: re-arm its wake-up. */
  settle: (record: TaskRecord) => void;
  /** Runs `fn` after every earlier decision about the task (a catch-up must not race one). */
  serially: (taskId: string, fn: () => Promise<void>) => Promise<void>;
  /** Whether a failed subscription is still worth renewing. */
  active: () => boolean;
};

/**
 * Follows the log from the last position the records hold: events appended by anyone after the
 * replay — other nodes, other processes, and this node's own (skipped before they are parsed when the
 * node holds or is appending them). A gap in a stream is filled by reading it; a failed subscription
 * is renewed from where it stopped a second later.
 */
export class LogFollower {
  readonly #options: LogFollowerOptions;
  #subscription: Subscription | null = null;

  constructor(options: LogFollowerOptions) {
    this.#options = options;
  }

  start(): void {
    const { store, records, clock, logger, active } = this.#options;
    let failed = false;
    const subscription = store
      .subscribeToAll({ after: records.position, streamPrefixes: [TASK_STREAM_PREFIX], known: records.passOver })
      .subscribe({
        next: (e) => this.#follow(e),
        error: (err: unknown) => {
          failed = true;
          this.#subscription = null;
          logger.error({ err, position: String(records.position) }, 'log subscription failed; renewing it in 1 s');
          clock.setTimer(() => {
            if (active()) this.start();
          }, 1_000);
        },
      });
    if (!failed) this.#subscription = subscription;
  }

  stop(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = null;
  }

  #follow(recorded: RecordedEvent): void {
    const { records, settle, serially, logger } = this.#options;
    records.followed(recorded.stream, recorded.revision, recorded.position);
    const taskId = taskIdOfStream(recorded.stream);
    if (taskId === undefined) return;
    const record = records.recordOf(taskId);
    if (recorded.revision <= record.revision) return;
    if (recorded.revision === record.revision + 1n) {
      records.applyRecorded(record, recorded);
      settle(record);
    } else {
      serially(taskId, async () => {
        await records.catchUp(record);
        settle(record);
      }).catch((err: unknown) => logger.error({ err, taskId }, 'could not catch up with a task stream'));
    }
  }
}
