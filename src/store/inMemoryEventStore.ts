import type { Observable } from 'rxjs';
import { IllegalStateError, NotFoundError, ValidationError } from '../../domain/errors/index.js';
import {
  checkReadAll,
  checkReadStream,
  checkSubscribe,
  decideAppend,
  matchesPrefixes,
  prepareAppend,
  prepareBatchEntry,
  prepareTruncation,
  recordedEventOf,
  truncationPastEnd,
  type PreparedAppend,
  type StoredEvent,
  type StoredId,
} from './appendRules.js';
import {
  WrongExpectedVersionError,
  type AppendOptions,
  type AppendResult,
  type BatchAppendResult,
  type EventData,
  type EventStore,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type StreamAppend,
  type SubscribeOptions,
} from './eventStore.js';
import { CursorHub } from './positionCursor.js';
import { inPartition } from './streamPartition.js';

export type InMemoryEventStoreOptions = {
  /** Events per catch-up page before yielding to the event loop. @default 1000 */
  pageSize?: number;
  /** The store's clock for `RecordedEvent.time`. @default Date.now */
  now?: () => number;
};

type Stored = StoredEvent & { time: number };

/** A stream: the positions of its events from revision `first` on (the ones before were truncated). */
type Stream = { first: number; positions: number[] };

const lastRevisionOf = (s: Stream): number => s.first + s.positions.length - 1;

/**
 * The in-memory twin of the SQLite adapter: same validation, same append decision, same subscription
 * loop, so tests of the rest of the system against it hold against the real store. Data and metadata
 * are kept as JSON text and parsed on read, as a real store does, so a consumer never shares (and
 * cannot mutate) the stored object, and what does not survive JSON does not survive here either.
 */
export class InMemoryEventStore implements EventStore {
  // Positions are 1, 2, 3…: the event at position p is log[p - 1]; undefined once truncated.
  private readonly log: (Stored | undefined)[] = [];
  private readonly streams = new Map<string, Stream>();
  private readonly ids = new Map<string, number>();
  private readonly hub: CursorHub;
  private readonly now: () => number;
  private closed = false;
  private wakeScheduled = false;

  constructor(options: InMemoryEventStoreOptions = {}) {
    this.hub = new CursorHub(options.pageSize ?? 1000);
    this.now = options.now ?? Date.now;
  }

  appendToStream(stream: string, events: readonly EventData[], options: AppendOptions = {}): Promise<AppendResult> {
    try {
      this.assertOpen();
      const result = this.append(prepareAppend(stream, events, options.expectedRevision ?? 'any'));
      return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  appendBatch(appends: readonly StreamAppend[]): Promise<BatchAppendResult[]> {
    try {
      this.assertOpen();
      if (!Array.isArray(appends)) throw new ValidationError([{ path: 'appends', message: 'must be an array' }]);
      return Promise.resolve(
        appends.map((entry): BatchAppendResult => {
          const prepared = prepareBatchEntry(entry);
          const result = prepared instanceof Error ? prepared : this.append(prepared);
          return result instanceof Error ? { ok: false, error: result } : { ok: true, result };
        }),
      );
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> {
    return this.read(() => {
      const { direction, fromRevision, maxCount } = checkReadStream(stream, options);
      const { first, positions } = this.streams.get(stream) ?? { first: 0, positions: [] };
      const limit = maxCount ?? Infinity;
      const out: RecordedEvent[] = [];
      // Indexes into `positions`: revision r is positions[r - first].
      if (direction === 'forwards') {
        for (let i = Math.max(0, Number(fromRevision ?? 0n) - first); i < positions.length && out.length < limit; i++)
          out.push(this.at(positions[i]));
      } else {
        const last = positions.length - 1;
        const start = fromRevision === undefined ? last : Math.min(Number(fromRevision) - first, last);
        for (let i = start; i >= 0 && out.length < limit; i--) out.push(this.at(positions[i]));
      }
      return out;
    });
  }

  streamRevision(stream: string): Promise<bigint | undefined> {
    return this.read(() => {
      checkReadStream(stream);
      const found = this.streams.get(stream);
      return found === undefined ? undefined : BigInt(lastRevisionOf(found));
    });
  }

  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]> {
    return this.read(() => {
      const { after = 0n, maxCount, partition } = checkReadAll(options);
      const limit = maxCount ?? Infinity;
      const out: RecordedEvent[] = [];
      for (let p = Number(after) + 1; p <= this.log.length && out.length < limit; p++) {
        const stored = this.log[p - 1];
        if (stored !== undefined && inPartition(stored.stream, partition)) out.push(this.at(p));
      }
      return out;
    });
  }

  headPosition(): Promise<bigint> {
    return this.read(() => BigInt(this.log.length));
  }

  subscribeToAll(options?: SubscribeOptions): Observable<RecordedEvent> {
    const { after, streamPrefixes, known } = checkSubscribe(options);
    return this.hub.observe(
      after,
      {
        head: () => BigInt(this.log.length),
        page: (from, upTo, limit) => {
          const events: RecordedEvent[] = [];
          let p = Number(from);
          // Bound the scan, as the SQLite adapter does, so a rare prefix in a long log yields between pages.
          const end = Math.min(Number(upTo), p + limit * 16);
          while (p < end && events.length < limit) {
            p++;
            const stored = this.log[p - 1];
            if (
              stored !== undefined &&
              matchesPrefixes(stored.stream, streamPrefixes) &&
              !known?.(stored.stream, stored.revision, BigInt(p))
            )
              events.push(this.at(p));
          }
          return { events, through: BigInt(p) };
        },
      },
      () => (this.closed ? closedError() : undefined),
    );
  }

  truncateBefore(stream: string, revision: bigint): Promise<void> {
    return this.read(() => {
      const { truncateBefore } = prepareTruncation(stream, revision, 'truncate');
      const found = this.streams.get(stream);
      if (found === undefined) throw new NotFoundError('stream', stream);
      const last = lastRevisionOf(found);
      if (truncateBefore > BigInt(last)) throw truncationPastEnd(stream, truncateBefore, BigInt(last));
      const drop = Number(truncateBefore) - found.first;
      if (drop <= 0) return;
      // As SQLite deletes the rows: the events leave every read, and their ids are forgotten.
      for (const p of found.positions.splice(0, drop)) {
        this.ids.delete((this.log[p - 1] as Stored).id);
        this.log[p - 1] = undefined;
      }
      found.first += drop;
    });
  }

  startStreamAt(stream: string, revision: bigint): Promise<void> {
    return this.read(() => {
      const { truncateBefore } = prepareTruncation(stream, revision, 'start');
      const found = this.streams.get(stream);
      if (found !== undefined) throw new WrongExpectedVersionError(stream, 'no_stream', BigInt(lastRevisionOf(found)));
      this.streams.set(stream, { first: Number(truncateBefore), positions: [] });
    });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.hub.completeAll();
    }
    return Promise.resolve();
  }

  private append(append: PreparedAppend): AppendResult | Error {
    const found = this.streams.get(append.stream);
    // A stream started empty (startStreamAt) has a last revision but no event: position 0n, as for none.
    const head =
      found === undefined
        ? undefined
        : { revision: BigInt(lastRevisionOf(found)), position: BigInt(found.positions.at(-1) ?? 0) };
    const storedIds = append.events.map((e): StoredId | undefined => {
      const p = this.ids.get(e.id);
      if (p === undefined) return undefined;
      const stored = this.log[p - 1] as Stored;
      return { stream: stored.stream, revision: stored.revision, position: stored.position };
    });
    const decision = decideAppend(append, head, storedIds);
    if (decision.kind === 'fail') return decision.error;
    if (decision.kind === 'done') return decision.result;
    const list = found ?? { first: 0, positions: [] };
    if (found === undefined) this.streams.set(append.stream, list);
    const time = this.now();
    let revision = decision.firstRevision;
    for (const event of append.events) {
      const position = this.log.length + 1;
      this.log.push({ ...event, stream: append.stream, revision, position: BigInt(position), time });
      this.ids.set(event.id, position);
      list.positions.push(position);
      revision++;
    }
    this.scheduleWake();
    return { nextExpectedRevision: revision - 1n, position: BigInt(this.log.length) };
  }

  // Live delivery happens after the append returns, as it does after a commit in the real store: a
  // subscriber never runs inside the appender's call.
  private scheduleWake(): void {
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    queueMicrotask(() => {
      this.wakeScheduled = false;
      this.hub.wakeAll();
    });
  }

  private at(position: number | undefined): RecordedEvent {
    return recordedEventOf(this.log[(position as number) - 1] as Stored);
  }

  private read<T>(fn: () => T): Promise<T> {
    try {
      this.assertOpen();
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }
}

const closedError = (): Error => new IllegalStateError('the event store is closed', { state: 'closed' });
