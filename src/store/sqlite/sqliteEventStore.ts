import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Observable } from 'rxjs';
import { IllegalStateError, NotFoundError, ValidationError } from '../../../domain/errors/index.js';
import {
  checkReadAll,
  checkReadStream,
  checkSubscribe,
  prepareAppend,
  prepareBatchEntry,
  prepareTruncation,
  recordedEventOf,
  truncationPastEnd,
  type PreparedAppend,
} from '../appendRules.js';
import type {
  AppendOptions,
  AppendResult,
  BatchAppendResult,
  EventData,
  EventStore,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamAppend,
  SubscribeOptions,
} from '../eventStore.js';
import { CursorHub, type CursorSource } from '../positionCursor.js';
import { appendWriter, type Written } from './appendToStream.js';
import { Checkpointer } from './checkpointer.js';
import { busyBackoffMs, GroupCommit, isBusy, type Outcome } from './groupCommit.js';
import { configure, migrate, setBusyTimeout, type Synchronous } from './schema.js';
import { RecentRows } from './recentRows.js';
import { MAX_INT64, NO_LIMIT, prepareStatements, type EventRow, type Statements } from './statements.js';
import { ThreadWriter } from './threadWriter.js';

export type SqliteEventStoreOptions = {
  /**
   * `FULL`: every commit is fsynced before its appends resolve; nothing acknowledged is lost, even on
   * power failure. `NORMAL` (in WAL mode): commits are fsynced at checkpoints only, so several times
   * faster on slow disks, and a process crash still loses nothing, but a power loss or OS crash may
   * drop the last acknowledged transactions (the file stays consistent). A fire that was acknowledged
   * and delivered could then be lost from the log. @default 'FULL'
   */
  synchronous?: Synchronous;
  /**
   * How long one SQLite call waits for another process's lock before reporting busy. better-sqlite3 is
   * synchronous, so this wait blocks the event loop (timers fire late), and SQLite's wait sleeps up to
   * 100 ms at a time, which lets a busy process starve the waiting one. So keep it short: after it,
   * the store retries off the event loop (see `busyRetryLimitMs`). Opening waits up to 5 s regardless.
   * @default 20
   */
  busyTimeoutMs?: number;
  /** How long appends and reads keep being retried while the database stays busy, before they reject as `unavailable`. @default 30000 */
  busyRetryLimitMs?: number;
  /** How often live subscriptions look for commits made by other processes. @default 50 */
  pollIntervalMs?: number;
  /** Events per catch-up page; the subscription yields to the event loop between pages. @default 1000 */
  pageSize?: number;
  /** Appends per group-commit transaction (an appendBatch is never split). @default 10000 */
  maxBatch?: number;
  /** The store's clock for `RecordedEvent.time`. @default Date.now */
  now?: () => number;
  /**
   * Where write transactions run. `thread`: in a worker thread that owns the write connection, so the
   * inserts and the COMMIT's fsync never block this event loop (the node decides fires on it);
   * validation, group commit batching and all reads stay on this thread, and the next batch gathers
   * while one commits. `inline`: on this thread, blocking it for the whole transaction.
   * @default 'thread'
   */
  writer?: 'thread' | 'inline';
};

type CompiledOptions = Required<SqliteEventStoreOptions>;

const compileOptions = (options: SqliteEventStoreOptions = {}): CompiledOptions => {
  const writer = options.writer ?? 'thread';
  // Checked, as callers may be JavaScript: an unknown value must not silently mean one of the two.
  if (writer !== 'thread' && writer !== 'inline')
    throw new ValidationError([{ path: 'writer', message: `must be 'thread' or 'inline', got ${String(writer)}` }]);
  return {
    synchronous: options.synchronous ?? 'FULL',
    busyTimeoutMs: options.busyTimeoutMs ?? 20,
    busyRetryLimitMs: options.busyRetryLimitMs ?? 30_000,
    pollIntervalMs: options.pollIntervalMs ?? 50,
    pageSize: options.pageSize ?? 1000,
    maxBatch: options.maxBatch ?? 10_000,
    now: options.now ?? Date.now,
    writer,
  };
};

/** Counters of the writer, for tests and benchmarks. */
export type SqliteEventStoreMetrics = {
  transactions: number;
  eventsWritten: number;
  busyRetries: number;
  /** Why the checkpoint thread stopped (the writer then checkpoints at ~400 MB of WAL), or null. */
  checkpointProblem: string | null;
};

/** How often the checkpoint thread copies the WAL into the database file (with the writer in a thread). */
const CHECKPOINT_INTERVAL_MS = 250;

type Lifecycle = 'open' | 'closing' | 'closed';

/**
 * The embedded event store: one SQLite file in WAL mode, shareable by several processes. Appends go
 * through group commit (see groupCommit.ts), whose transactions run in a writer thread by default (see
 * threadWriter.ts) while this thread's connection serves the reads; subscriptions are position cursors
 * (see positionCursor.ts) woken after this process's commits and by polling `PRAGMA data_version` for
 * other connections' commits.
 */
export class SqliteEventStore implements EventStore {
  private state: Lifecycle = 'open';
  private closing: Promise<void> | undefined;
  private readonly st: Statements;
  private readonly groupCommit: GroupCommit;
  private readonly hub: CursorHub;
  // Inline: the transaction on `db`, on this thread. Thread: the writer thread, and `db` only reads (in
  // WAL mode a read sees every commit whose COMMIT has returned, so every commit the thread reported).
  private readonly writer: ((appends: readonly PreparedAppend[]) => Written) | ThreadWriter;
  private readonly checkpointer: Checkpointer | undefined;
  // Highest position known to be committed; cursors read up to it.
  private knownHead: bigint;
  private readonly recent = new RecentRows();
  // The file's truncation count when `recent` was last known good: another process's truncation
  // (seen by polling or at our next commit) may have deleted rows it holds.
  private truncationsSeen: bigint;
  private lastDataVersion: bigint;
  private pollTimer: NodeJS.Timeout | undefined;
  private transactions = 0;
  private eventsWritten = 0;

  private constructor(
    file: string,
    private readonly db: Database.Database,
    private readonly options: CompiledOptions,
  ) {
    this.st = prepareStatements(db);
    this.knownHead = this.st.head();
    this.lastDataVersion = this.st.dataVersion();
    this.truncationsSeen = this.st.truncations();
    this.hub = new CursorHub(options.pageSize, (count) => this.onSubscriptionCount(count));
    // Busy waits are measured on the wall clock, not on the injected one: a simulated clock that
    // stands still must not make a locked database wait forever.
    this.groupCommit = new GroupCommit((appends) => this.commit(appends), {
      maxBatch: options.maxBatch,
      busyRetryLimitMs: options.busyRetryLimitMs,
      now: Date.now,
    });
    // Last: nothing after them may throw and leave a thread running.
    const settings = { file, synchronous: options.synchronous, busyTimeoutMs: options.busyTimeoutMs };
    const threads = options.writer === 'thread';
    this.checkpointer = threads ? new Checkpointer({ ...settings, intervalMs: CHECKPOINT_INTERVAL_MS }) : undefined;
    this.writer = threads
      ? new ThreadWriter({ ...settings, checkpointsApart: true })
      : appendWriter(db, this.st, options.now);
  }

  /** Opens (creating if needed, with its parent folders) the store in `file`. */
  static open(file: string, options?: SqliteEventStoreOptions): SqliteEventStore {
    const compiled = compileOptions(options);
    mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    try {
      configure(db, compiled);
      migrate(db);
      setBusyTimeout(db, compiled.busyTimeoutMs);
      return new SqliteEventStore(file, db, compiled);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  get metrics(): SqliteEventStoreMetrics {
    return {
      transactions: this.transactions,
      eventsWritten: this.eventsWritten,
      busyRetries: this.groupCommit.busyRetries,
      checkpointProblem: this.checkpointer?.problem ?? null,
    };
  }

  appendToStream(stream: string, events: readonly EventData[], options: AppendOptions = {}): Promise<AppendResult> {
    let prepared: PreparedAppend;
    try {
      this.assertAccepting();
      prepared = prepareAppend(stream, events, options.expectedRevision ?? 'any');
    } catch (e) {
      return Promise.reject(e as Error);
    }
    return this.groupCommit
      .submit([prepared])
      .then(([outcome]) => (outcome instanceof Error ? Promise.reject(outcome) : (outcome as AppendResult)));
  }

  async appendBatch(appends: readonly StreamAppend[]): Promise<BatchAppendResult[]> {
    this.assertAccepting();
    if (!Array.isArray(appends)) throw new ValidationError([{ path: 'appends', message: 'must be an array' }]);
    const prepared = appends.map(prepareBatchEntry);
    const valid = prepared.filter((p): p is PreparedAppend => !(p instanceof Error));
    const outcomes = valid.length > 0 ? await this.groupCommit.submit(valid) : [];
    let at = 0;
    return prepared.map((p): BatchAppendResult => {
      const outcome = p instanceof Error ? p : (outcomes[at++] as Outcome);
      return outcome instanceof Error ? { ok: false, error: outcome } : { ok: true, result: outcome };
    });
  }

  async readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> {
    const { direction, fromRevision, maxCount = NO_LIMIT } = checkReadStream(stream, options);
    const rows = await this.read(() =>
      direction === 'forwards'
        ? this.st.readForwards(stream, fromRevision ?? 0n, maxCount)
        : // Past the end, backwards starts at the last event, as in EventStoreDB.
          this.st.readBackwards(stream, fromRevision ?? MAX_INT64, maxCount),
    );
    return rows.map(recordedEventOf);
  }

  async streamRevision(stream: string): Promise<bigint | undefined> {
    checkReadStream(stream);
    return (await this.read(() => this.st.streamHead(stream)))?.revision;
  }

  async readAll(options?: ReadAllOptions): Promise<RecordedEvent[]> {
    const { after = 0n, maxCount = NO_LIMIT, partition } = checkReadAll(options);
    return (await this.read(() => this.st.readAll(after, maxCount, partition))).map(recordedEventOf);
  }

  headPosition(): Promise<bigint> {
    return this.read(() => this.st.head());
  }

  subscribeToAll(options?: SubscribeOptions): Observable<RecordedEvent> {
    const { after, streamPrefixes, known } = checkSubscribe(options);
    return this.hub.observe(after, this.cursorSource(streamPrefixes, known), () =>
      this.state === 'open'
        ? undefined
        : new IllegalStateError(`the event store is ${this.state}`, { state: this.state }),
    );
  }

  /** Deletes the events in the write path (one transaction shared with the appends queued with it). */
  async truncateBefore(stream: string, revision: bigint): Promise<void> {
    this.assertAccepting();
    const prepared = prepareTruncation(stream, revision, 'truncate');
    // The last revision only grows, so a check outside the write transaction cannot be overtaken.
    const head = await this.read(() => this.st.streamHead(stream));
    if (head === undefined) throw new NotFoundError('stream', stream);
    if (revision > head.revision) throw truncationPastEnd(stream, revision, head.revision);
    await this.submitOne(prepared);
  }

  async startStreamAt(stream: string, revision: bigint): Promise<void> {
    this.assertAccepting();
    await this.submitOne(prepareTruncation(stream, revision, 'start'));
  }

  private async submitOne(prepared: PreparedAppend): Promise<AppendResult> {
    const [outcome] = await this.groupCommit.submit([prepared]);
    if (outcome instanceof Error) throw outcome;
    return outcome as AppendResult;
  }

  /** Commits what is queued, completes every subscription, then closes the file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing';
      await this.groupCommit.drain();
      if (this.writer instanceof ThreadWriter) await this.writer.close();
      await this.checkpointer?.close();
      this.stopPolling();
      this.hub.completeAll();
      this.db.close();
      this.state = 'closed';
    })();
    return this.closing;
  }

  private commit(appends: readonly PreparedAppend[]): Outcome[] | Promise<Outcome[]> {
    // A truncation may delete rows the live subscribers' cache of the last batch still holds.
    const truncates = appends.some((a) => a.truncateBefore !== undefined);
    if (!(this.writer instanceof ThreadWriter)) return this.committed(this.writer(appends), truncates);
    // The clock is read here, as the transaction starts: the thread cannot call an injected clock.
    return this.writer.write(appends, this.options.now()).then((written) => this.committed(written, truncates));
  }

  private committed({ outcomes, before, rows }: Written, truncates: boolean): Outcome[] {
    this.transactions++;
    this.eventsWritten += rows.length;
    const last = rows.length > 0 ? (rows[rows.length - 1] as EventRow).position : before;
    const truncated = this.truncationCountMoved();
    if (truncates || truncated) this.recent.clear();
    else this.recent.add(before, rows);
    // `before` may also reveal other processes' commits that polling has not seen yet.
    if (last > this.knownHead) {
      this.knownHead = last;
      this.hub.wakeAll();
    }
    return outcomes;
  }

  private cursorSource(prefixes: readonly string[] | undefined, known: SubscribeOptions['known']): CursorSource {
    const readRange = this.st.rangeReader(prefixes);
    // Rows the subscriber holds already are passed over before their JSON is parsed.
    const events = (rows: readonly EventRow[]): RecordedEvent[] => {
      const out: RecordedEvent[] = [];
      for (const row of rows) if (!known?.(row.stream, row.revision, row.position)) out.push(recordedEventOf(row));
      return out;
    };
    return {
      head: () => this.knownHead,
      page: (after, upTo, limit) => {
        const recent = this.recent.page(after, upTo, limit, prefixes);
        if (recent !== undefined) return { events: events(recent.rows), through: recent.through, cached: true };
        // Bound the positions one query may scan, so a rare prefix in a long log is read in slices
        // with the event loop free in between.
        const window = after + BigInt(limit * 16);
        const end = upTo < window ? upTo : window;
        const rows = readRange(after, end, limit);
        return {
          events: events(rows),
          through: rows.length === limit ? (rows[limit - 1] as EventRow).position : end,
        };
      },
    };
  }

  private onSubscriptionCount(count: number): void {
    if (count === 0) {
      this.stopPolling();
      return;
    }
    // While nobody subscribed nothing polled: catch up with other processes' commits before the cursor starts.
    this.poll();
    if (this.pollTimer === undefined) this.pollTimer = setInterval(() => this.poll(), this.options.pollIntervalMs);
  }

  private poll(): void {
    if (this.state === 'closed') return;
    try {
      // data_version changes only when another connection commits: one cheap read per tick when idle.
      const version = this.st.dataVersion();
      if (version === this.lastDataVersion) return;
      this.lastDataVersion = version;
      if (this.truncationCountMoved()) this.recent.clear();
      const head = this.st.head();
      if (head > this.knownHead) {
        this.knownHead = head;
        this.hub.wakeAll();
      }
    } catch {
      // A busy or failing read now is retried at the next tick; a persistent failure surfaces to the
      // subscribers through their own reads.
    }
  }

  /**
   * Whether the file's truncation count moved since last asked (by this store or another process).
   * Also true when it cannot be read: dropping the kept rows is always safe, and this runs after COMMIT,
   * where throwing would fail appends that were written.
   */
  private truncationCountMoved(): boolean {
    try {
      const count = this.st.truncations();
      if (count === this.truncationsSeen) return false;
      this.truncationsSeen = count;
      return true;
    } catch {
      return true;
    }
  }

  private stopPolling(): void {
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  private assertAccepting(): void {
    if (this.state !== 'open')
      throw new IllegalStateError(`the event store is ${this.state}: it accepts no more appends`, {
        state: this.state,
      });
  }

  /** Runs a read, retrying off the event loop while another process keeps the file busy (rare in WAL mode). */
  private async read<T>(fn: () => T): Promise<T> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (this.state === 'closed') throw new IllegalStateError('the event store is closed', { state: this.state });
      try {
        return fn();
      } catch (e) {
        if (!isBusy(e) || Date.now() - started >= this.options.busyRetryLimitMs) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, busyBackoffMs(attempt)));
    }
  }
}
