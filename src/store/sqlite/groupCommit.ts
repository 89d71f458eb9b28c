import { ErrorCode, KairosError } from '../../../domain/errors/index.js';
import type { PreparedAppend } from '../appendRules.js';
import type { AppendResult } from '../eventStore.js';

/**
 * Group commit: appends issued in the same turn of the event loop are queued and written in one
 * transaction (one fsync), each checked on its own. The flush is scheduled with setImmediate rather
 * than a microtask so appends issued from many promise continuations and I/O callbacks of one turn
 * still share it; the cost is at most one loop turn of latency.
 *
 * SQLITE_BUSY (another process held the write lock past busy_timeout) never reaches the caller at
 * once: the batch goes back to the head of the queue and is retried after a short pause, off the event
 * loop, and only after `busyRetryLimitMs` of failing does it reject with an `unavailable` error.
 */

export type Outcome = AppendResult | Error;

/**
 * Writes `appends` in one transaction and returns one outcome per append; throws (or rejects) if the
 * transaction failed. When it returns a promise (the transaction runs in the writer thread), appends
 * keep queueing meanwhile and go in the next transaction: at most one is in flight, so positions
 * follow submission order and appends to one stream are decided in the order they were issued.
 */
export type CommitFn = (appends: readonly PreparedAppend[]) => Outcome[] | Promise<Outcome[]>;

type Item = { appends: PreparedAppend[]; settle: (outcomes: Outcome[]) => void; fail: (error: Error) => void };

export type GroupCommitOptions = {
  /** Most appends per transaction; an appendBatch is never split, so one transaction may hold more. */
  maxBatch: number;
  busyRetryLimitMs: number;
  now: () => number;
};

/**
 * The pause before retrying after SQLITE_BUSY: short and jittered. Short, because SQLite's own busy
 * wait grows to 100 ms sleeps, and a process that sleeps that long while the other commits every
 * millisecond never gets the lock (measured: one of two processes starved completely in a quarter of
 * runs with busy_timeout 5000); jittered, so two processes that keep colliding fall out of step.
 */
export const busyBackoffMs = (attempt: number): number => 1 + Math.random() * Math.min(16, 2 ** attempt);

export const isBusy = (e: unknown): boolean =>
  typeof e === 'object' && e !== null && /^SQLITE_(BUSY|LOCKED)/.test(String((e as { code?: unknown }).code));

export class GroupCommit {
  private queue: Item[] = [];
  private scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private busySince: number | undefined;
  private busyAttempts = 0;
  private inFlight = false;
  private drainWaiters: (() => void)[] = [];
  /** Times a transaction met SQLITE_BUSY and was retried. */
  busyRetries = 0;

  constructor(
    private readonly commit: CommitFn,
    private readonly options: GroupCommitOptions,
  ) {}

  /** Queues appends that are written together; the promise settles after COMMIT. */
  submit(appends: PreparedAppend[]): Promise<Outcome[]> {
    return new Promise((settle, fail) => {
      this.queue.push({ appends, settle, fail });
      this.schedule();
    });
  }

  /** Resolves once every queued append is committed (or has failed). */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.scheduled === undefined && !this.inFlight) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private schedule(): void {
    // While a transaction is in flight the queue only grows; its completion schedules the next one.
    if (this.scheduled === undefined && !this.inFlight) this.scheduled = setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = undefined;
    const items = this.take();
    if (items.length === 0) {
      this.next();
      return;
    }
    let result: Outcome[] | Promise<Outcome[]>;
    try {
      result = this.commit(items.flatMap((i) => i.appends));
    } catch (e) {
      this.failed(items, e);
      return;
    }
    if (!(result instanceof Promise)) {
      this.settled(items, result);
      return;
    }
    this.inFlight = true;
    result.then(
      (outcomes) => {
        this.inFlight = false;
        // What queued meanwhile goes to the writer before this batch's callers run: their work (applying,
        // delivering) then overlaps the next transaction instead of alternating with it.
        if (this.queue.length > 0 && this.scheduled === undefined) this.flush();
        this.settled(items, outcomes);
      },
      (e: unknown) => {
        this.inFlight = false;
        this.failed(items, e);
      },
    );
  }

  private settled(items: Item[], outcomes: Outcome[]): void {
    let at = 0;
    for (const item of items) {
      item.settle(outcomes.slice(at, at + item.appends.length));
      at += item.appends.length;
    }
    this.busySince = undefined;
    this.busyAttempts = 0;
    this.next();
  }

  private failed(items: Item[], e: unknown): void {
    if (isBusy(e) && !this.busyTooLong()) {
      this.retryLater(items);
      return;
    }
    const error = isBusy(e)
      ? new KairosError(
          ErrorCode.unavailable,
          `the event store stayed locked by another process for ${this.options.busyRetryLimitMs} ms`,
          undefined,
          { cause: e },
        )
      : e instanceof KairosError
        ? e
        : new KairosError(
            ErrorCode.unavailable,
            `the event store could not commit: ${(e as Error).message}`,
            undefined,
            { cause: e },
          );
    for (const item of items) item.fail(error);
    this.busySince = undefined;
    this.busyAttempts = 0;
    this.next();
  }

  private next(): void {
    if (this.queue.length > 0) this.schedule();
    else if (this.scheduled === undefined && !this.inFlight)
      for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private take(): Item[] {
    let count = 0;
    let n = 0;
    while (
      n < this.queue.length &&
      (n === 0 || count + (this.queue[n] as Item).appends.length <= this.options.maxBatch)
    ) {
      count += (this.queue[n] as Item).appends.length;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private busyTooLong(): boolean {
    this.busySince ??= this.options.now();
    return this.options.now() - this.busySince >= this.options.busyRetryLimitMs;
  }

  private retryLater(items: Item[]): void {
    this.busyRetries++;
    this.busyAttempts++;
    // Order is kept: the failed batch goes back in front of what queued meanwhile.
    this.queue = [...items, ...this.queue];
    this.scheduled = setTimeout(() => this.flush(), busyBackoffMs(this.busyAttempts));
  }
}
