import type { Logger } from 'pino';
import { emptyTaskHistory, foldTaskHistory, type TaskHistory } from '../../domain/task/capture.js';
import { EventMetadata, taskStreamOf, type TaskEvent } from '../../domain/task/events.js';
import { RetentionScan, retentionPolicyOf, type RetentionPolicy } from '../../domain/task/retention.js';
import type { Clock } from '../clock/clock.js';
import type { EventStore } from '../store/eventStore.js';
import { decodeTaskEvent } from './taskCodec.js';
import type { TaskRecord } from './taskRecord.js';

export type RetentionOptions = {
  /** Keep fires no older than this (a task's own `retention` replaces this policy). @default null: no limit */
  maxAgeMs?: number | null;
  /** Keep at most this many of a task's most recent fires. @default null: no limit */
  maxFires?: number | null;
  /** Events appended to a task stream between two looks at what it may drop. @default 100 */
  checkEvery?: number;
};

export type TaskRetentionDeps = {
  store: EventStore;
  clock: Clock;
  logger: Logger;
  options: RetentionOptions;
  /** The task's record while this node may act on it (holds its lease, not fenced); else undefined. */
  held: (taskId: string) => TaskRecord | undefined;
  /**
   * Appends a `TaskStateCaptured` with `history` as a decision at revision `head`: false when the
   * stream moved on meanwhile, or the node no longer holds the task.
   */
  capture: (taskId: string, head: bigint, history: TaskHistory) => Promise<boolean>;
};

/** Events read per page when a stream is looked at. */
const PAGE = 1_000;
/**
 * Revisions dropped per truncation step. The first look at a long stream may drop millions of events;
 * in one go that would be one long write transaction (SQLite) holding every fire of the node back.
 */
const TRUNCATE_STEP = 10_000n;
/** Captures tried at a moving head before a look gives up until the stream has grown again. */
const CAPTURE_TRIES = 5;

/**
 * Retention on a node (docs/operations.md, "Retention"): when a stream the node holds has grown by
 * `checkEvery` events since its last capture or look, it finds where the stream may be truncated
 * (`RetentionScan`), has the node append a capture at the head — at the revision it read, so a stream
 * that moved meanwhile is left for the next look — then truncates before the cut, which is never after
 * the capture. One task at a time, in the background: never on the way of a fire.
 */
export class TaskRetention {
  readonly #deps: TaskRetentionDeps;
  readonly #policy: RetentionPolicy;
  readonly #checkEvery: number;
  readonly #queued = new Set<string>();
  #running: Promise<void> | null = null;
  #stopped = false;

  constructor(deps: TaskRetentionDeps) {
    this.#deps = deps;
    this.#policy = { maxAgeMs: deps.options.maxAgeMs ?? null, maxFires: deps.options.maxFires ?? null };
    this.#checkEvery = deps.options.checkEvery ?? 100;
  }

  /** As the node settles a task it holds: queues a look once the stream has grown enough. O(1) otherwise. */
  consider(record: TaskRecord): void {
    const since = Number(record.revision) - Math.max(record.lastCapture, record.retentionCheckedAt);
    if (this.#stopped || since < this.#checkEvery || !retentionPolicyOf(this.#policy, record.state.spec)) return;
    this.#queued.add(record.taskId);
    this.#running ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#lookAtQueued())
      .finally(() => (this.#running = null));
  }

  /** Lets the look under way finish; no other starts. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  async #lookAtQueued(): Promise<void> {
    for (const taskId of this.#queued) {
      if (this.#stopped) return;
      this.#queued.delete(taskId);
      try {
        await this.#lookAt(taskId);
      } catch (err) {
        this.#deps.logger.warn({ err, taskId }, 'retention could not truncate a task stream; it tries again later');
      }
    }
  }

  async #lookAt(taskId: string): Promise<void> {
    const { store, clock } = this.#deps;
    const record = this.#deps.held(taskId);
    const policy = record && retentionPolicyOf(this.#policy, record.state.spec);
    // `absent`: the stream was just found truncated and its capture is still to come.
    if (!record || !policy || record.state.status === 'absent') return;
    const stream = taskStreamOf(taskId);
    const head = record.revision;
    record.retentionCheckedAt = Number(head);
    const scan = new RetentionScan(policy, clock.now());
    // A capture holds the history before it, so the history folds from the last one on.
    const historyFrom = BigInt(Math.max(record.lastCapture, 0));
    const history = emptyTaskHistory();
    let start: bigint | undefined;
    const scanned = await this.#read(stream, 0n, head, (revision, event, metadata) => {
      start ??= revision;
      if (revision >= historyFrom) foldTaskHistory(history, event, Number(revision), metadata);
      return scan.add(Number(revision), event);
    });
    const cut = scan.cut(Number(head) + 1);
    if (cut === null) return;
    const foldHistory = (from: bigint, to: bigint): Promise<bigint> =>
      this.#read(stream, from, to, (revision, event, metadata) => {
        foldTaskHistory(history, event, Number(revision), metadata);
        return true;
      });
    await foldHistory(scanned > historyFrom ? scanned : historyFrom, head);
    // A task appended to meanwhile (it fires often) would lose this race every time: fold what came
    // since into the history and try at the new head; the cut, found earlier, stays before it.
    let at = head;
    for (let tries = 1; !(await this.#deps.capture(taskId, at, history)); tries++) {
      const moved = this.#deps.held(taskId)?.revision;
      if (moved === undefined || moved <= at || tries >= CAPTURE_TRIES) return;
      await foldHistory(at + 1n, moved);
      at = moved;
    }
    const end = BigInt(cut);
    // The truncation point only moves forward, so stopping between steps leaves a valid stream.
    for (let to = (start ?? end) + TRUNCATE_STEP; to < end; to += TRUNCATE_STEP) await store.truncateBefore(stream, to);
    await store.truncateBefore(stream, end);
    this.#deps.logger.debug({ taskId, before: cut, capture: String(at + 1n) }, 'task stream truncated');
  }

  /**
   * Reads `stream` from `from` up to `to` in pages, handing each task event to `visit` until it
   * returns false. Returns the revision after the last event visited (where to read on).
   */
  async #read(
    stream: string,
    from: bigint,
    to: bigint,
    visit: (revision: bigint, event: TaskEvent, metadata: EventMetadata) => boolean,
  ): Promise<bigint> {
    let next = from;
    while (next <= to) {
      const page = await this.#deps.store.readStream(stream, { fromRevision: next, maxCount: PAGE });
      for (const recorded of page) {
        if (recorded.revision > to) return next;
        next = recorded.revision + 1n;
        const decoded = decodeTaskEvent(recorded);
        if (!decoded.ok) continue;
        const metadata = EventMetadata.safeParse(recorded.metadata);
        if (!visit(recorded.revision, decoded.event, metadata.success ? metadata.data : { actor: 'unknown' }))
          return next;
      }
      if (page.length < PAGE) return next;
    }
    return next;
  }
}
