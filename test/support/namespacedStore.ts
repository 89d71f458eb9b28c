import { randomUUID } from 'node:crypto';
import { Subject, filter, map, takeUntil, type Observable } from 'rxjs';
import { IllegalStateError, NotFoundError } from '../../domain/errors/index.js';
import {
  checkReadAll,
  checkReadStream,
  checkSubscribe,
  prepareAppend,
  prepareBatchEntry,
  prepareTruncation,
} from '../../src/store/appendRules.js';
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
} from '../../src/store/eventStore.js';
import { inPartition } from '../../src/store/streamPartition.js';

/**
 * A store that shows one test its own streams only, on a store shared with others (a real EventStoreDB
 * cannot be emptied between tests): stream names get a per-store prefix on the way in and lose it on the
 * way out, and reads of the whole log skip the other tests' events. Input is checked on the names the
 * test gave, so bad-input tests behave as on a store of their own.
 */
export class NamespacedStore implements EventStore {
  readonly #inner: EventStore;
  readonly #prefix = `t${randomUUID().replaceAll('-', '')}-`;
  readonly #closed$ = new Subject<void>();
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;

  constructor(inner: EventStore) {
    this.#inner = inner;
  }

  async appendToStream(
    stream: string,
    events: readonly EventData[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    this.#mustBeOpen();
    prepareAppend(stream, events, options.expectedRevision ?? 'any');
    return this.#track(
      this.#inner.appendToStream(this.#prefix + stream, events, options).catch((err: unknown) => {
        throw this.#unprefixError(err);
      }),
    );
  }

  async appendBatch(appends: readonly StreamAppend[]): Promise<BatchAppendResult[]> {
    this.#mustBeOpen();
    const checked = appends.map((entry) => prepareBatchEntry(entry));
    const valid = appends.filter((_, i) => !(checked[i] instanceof Error));
    const results = await this.#track(
      this.#inner.appendBatch(valid.map((a) => ({ ...a, stream: this.#prefix + a.stream }))),
    );
    let next = 0;
    return checked.map((c) =>
      c instanceof Error
        ? { ok: false as const, error: c }
        : ((r) => (r.ok ? r : { ok: false as const, error: this.#unprefixError(r.error) as Error }))(results[next++]!),
    );
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.#mustBeOpen();
    checkReadStream(stream, options);
    return (await this.#inner.readStream(this.#prefix + stream, options)).map((e) => this.#own(e)!);
  }

  async streamRevision(stream: string): Promise<bigint | undefined> {
    this.#mustBeOpen();
    checkReadStream(stream);
    return this.#inner.streamRevision(this.#prefix + stream);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.#mustBeOpen();
    const { after, maxCount, partition } = checkReadAll(options);
    // The parts of this namespace's log, by its own stream names (the inner store's differ by the prefix).
    const mine = (await this.#inner.readAll(after === undefined ? {} : { after }))
      .map((e) => this.#own(e))
      .filter((e): e is RecordedEvent => e !== undefined && inPartition(e.stream, partition));
    return maxCount === undefined ? mine : mine.slice(0, maxCount);
  }

  async truncateBefore(stream: string, revision: bigint): Promise<void> {
    this.#mustBeOpen();
    prepareTruncation(stream, revision, 'truncate');
    return this.#track(
      this.#inner.truncateBefore(this.#prefix + stream, revision).catch((err: unknown) => {
        throw this.#unprefixError(err);
      }),
    );
  }

  async startStreamAt(stream: string, revision: bigint): Promise<void> {
    this.#mustBeOpen();
    prepareTruncation(stream, revision, 'start');
    return this.#track(
      this.#inner.startStreamAt(this.#prefix + stream, revision).catch((err: unknown) => {
        throw this.#unprefixError(err);
      }),
    );
  }

  async headPosition(): Promise<bigint> {
    return (await this.readAll()).at(-1)?.position ?? 0n;
  }

  subscribeToAll(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    this.#mustBeOpen();
    const { after, streamPrefixes, known } = checkSubscribe(options);
    const prefix = this.#prefix;
    return this.#inner
      .subscribeToAll({
        after,
        streamPrefixes: (streamPrefixes ?? ['']).map((p) => prefix + p),
        ...(known
          ? {
              known: (stream: string, revision: bigint, position: bigint) =>
                known(stream.slice(prefix.length), revision, position),
            }
          : {}),
      })
      .pipe(
        map((e) => this.#own(e)),
        filter((e): e is RecordedEvent => e !== undefined),
        takeUntil(this.#closed$),
      );
  }

  /** Closes this view only: the shared store stays open for the other tests (its owner closes it). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#pending]);
    this.#closed$.next();
  }

  #mustBeOpen(): void {
    if (this.#closed) throw new IllegalStateError('the event store is closed');
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#pending.add(promise);
    void promise.finally(() => this.#pending.delete(promise)).catch(() => undefined);
    return promise;
  }

  #own(e: RecordedEvent): RecordedEvent | undefined {
    return e.stream.startsWith(this.#prefix) ? { ...e, stream: e.stream.slice(this.#prefix.length) } : undefined;
  }

  #unprefixError(err: unknown): unknown {
    if (err instanceof NotFoundError && typeof err.details === 'object' && 'stream' in err.details)
      return new NotFoundError('stream', String(err.details.stream).slice(this.#prefix.length));
    if (!(err instanceof WrongExpectedVersionError)) return err;
    return new WrongExpectedVersionError(err.stream.slice(this.#prefix.length), err.expected, err.actual);
  }
}
