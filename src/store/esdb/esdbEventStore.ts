import {
  ANY,
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  PersistentSubscriptionExistsError,
  PersistentSubscriptionDoesNotExistError,
  START,
  STREAM_EXISTS,
  StreamNotFoundError,
  WrongExpectedVersionError as EsdbWrongExpectedVersionError,
  excludeSystemEvents,
  jsonEvent,
  persistentSubscriptionToAllSettingsFromDefaults,
  streamNameFilter,
  type AllStreamResolvedEvent,
  type AppendExpectedRevision,
  type Position,
  type ResolvedEvent,
} from '@eventstore/db-client';
import { Observable, type Subscriber } from 'rxjs';
import { v5 as uuidv5 } from 'uuid';
import {
  ErrorCode,
  IllegalStateError,
  KairosError,
  NotFoundError,
  ValidationError,
  isKairosError,
} from '../../../domain/errors/index.js';
import {
  checkReadAll,
  checkReadStream,
  checkSubscribe,
  prepareAppend,
  prepareBatchEntry,
  prepareTruncation,
  truncationPastEnd,
  type PreparedAppend,
} from '../appendRules.js';
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
} from '../eventStore.js';
import { inPartition } from '../streamPartition.js';

export type EsdbEventStoreOptions = {
  /** Events read per round trip when paging `$all`. @default 1_000 */
  pageSize?: number;
  /** A live subscription that failed for a transient reason is renewed after this, doubling to 10 s. @default 250 */
  resubscribeAfterMs?: number;
};

/** A persistent subscription group on `$all`: EventStoreDB's competing consumers (direct-mode subscribers). */
export type PersistentGroupSettings = {
  /** Server-side filter: the stream names (regex) whose events the group gets. */
  streamPattern: string;
  /** An event not acked this long after it went out is retried, to another consumer if there is one. */
  messageTimeoutMs: number;
  /** Retries before an event is parked. */
  maxRetryCount: number;
};

/** One event handed to this consumer of a group; it must be acked or nacked. */
export type GroupMessage = {
  event: RecordedEvent;
  retryCount: number;
  ack(): Promise<void>;
  /** `retry`: again later (counts towards parking); `park`: to the group's parked stream at once; `skip`: drop it. */
  nack(action: 'retry' | 'park' | 'skip', reason: string): Promise<void>;
};

/**
 * The event store port on EventStoreDB (KurrentDB): `esdb://host:2113?tls=false` and the rest of the
 * client's connection string (credentials, TLS, cluster discovery). EventStoreDB has the semantics the
 * port was modelled on, so this is mostly a mapping:
 *
 * - Input is validated by the same rules as the other adapters (`appendRules`), before anything is sent.
 * - A log position is the event's **prepare position**: unique and increasing in log order. EventStoreDB
 *   positions are pairs (gRPC appends give each event its own, commit = prepare; older logs may share a
 *   commit position within one append), and the server accepts only positions where an event starts:
 *   `#resumeFrom` turns the port's "after this position" into a valid start (reads are inclusive,
 *   catch-up subscriptions exclusive) and the reader skips what it has already seen.
 * - `$`-streams (EventStoreDB's own) are never handed out: Kairos' streams cannot start with `$`.
 * - Id idempotence is EventStoreDB's: a re-append at the same place is a no-op; ids stored elsewhere are
 *   written again (the contract's `duplicateIds: 'eventstoredb'` trait).
 * - Concurrent appends are pipelined on the client's BatchAppend stream; `appendBatch` keeps batch order.
 * - A live subscription renews itself after a transient failure (leader change, restart, deadline) from
 *   the last position it delivered, so the subscriber sees no gap and no repeat.
 */
export class EsdbEventStore implements EventStore {
  readonly #client: EventStoreDBClient;
  readonly #pageSize: number;
  readonly #resubscribeAfterMs: number;
  /** Commit positions of events recently handed out, by prepare position: where to resume after them. */
  readonly #commits = new Map<bigint, bigint>();
  /** Calls under way and live subscribers: `close()` waits for the ones and completes the others. */
  readonly #calls = new Set<Promise<void>>();
  readonly #subscribers = new Set<Pick<Subscriber<unknown>, 'complete'>>();
  #closed = false;

  private constructor(client: EventStoreDBClient, options: EsdbEventStoreOptions) {
    this.#client = client;
    this.#pageSize = options.pageSize ?? 1_000;
    // Pages overlap by one event: a page of one would never move on.
    if (!Number.isInteger(this.#pageSize) || this.#pageSize < 2)
      throw new ValidationError([{ path: 'pageSize', message: 'must be an integer >= 2' }]);
    this.#resubscribeAfterMs = options.resubscribeAfterMs ?? 250;
  }

  /** Connects lazily (the client dials on first use); a bad connection string fails here, naming it. */
  static open(url: string, options: EsdbEventStoreOptions = {}): EsdbEventStore {
    let client: EventStoreDBClient;
    try {
      client = EventStoreDBClient.connectionString(url);
    } catch (err) {
      throw new KairosError(
        ErrorCode.validation,
        `invalid EventStoreDB connection string '${url}': ${err instanceof Error ? err.message : String(err)}`,
        { url },
      );
    }
    return new EsdbEventStore(client, options);
  }

  async appendToStream(
    stream: string,
    events: readonly EventData[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    this.#mustBeOpen();
    return this.#append(prepareAppend(stream, events, options.expectedRevision ?? 'any'));
  }

  /**
   * In batch order, one after the other: a later append may depend on an earlier one (same stream), and
   * positions follow batch order. Concurrent calls (the node's decisions, an import's chunks) are what
   * pipelines appends on the connection.
   */
  async appendBatch(appends: readonly StreamAppend[]): Promise<BatchAppendResult[]> {
    this.#mustBeOpen();
    const results: BatchAppendResult[] = [];
    for (const entry of appends) {
      if (this.#closed) {
        results.push({ ok: false, error: new IllegalStateError('the EventStoreDB event store is closed') });
        continue;
      }
      const prepared = prepareBatchEntry(entry);
      if (prepared instanceof Error) {
        results.push({ ok: false, error: prepared });
        continue;
      }
      try {
        results.push({ ok: true, result: await this.#append(prepared) });
      } catch (error) {
        results.push({ ok: false, error: error as Error });
      }
    }
    return results;
  }

  async #append(append: PreparedAppend): Promise<AppendResult> {
    const { stream, events, expectedRevision } = append;
    if (events.length === 0) {
      // EventStoreDB has nothing to say about an empty append; the port reports where the stream is.
      const head = await this.#head(stream);
      if (!matches(expectedRevision, head?.revision))
        throw new WrongExpectedVersionError(stream, expectedRevision, head?.revision);
      return { nextExpectedRevision: head?.revision ?? -1n, position: head?.position ?? 0n };
    }
    const pending = this.#client
      .appendToStream(
        stream,
        events.map((e) =>
          jsonEvent({
            id: e.id,
            type: e.type,
            data: JSON.parse(e.data) as never,
            // As bytes: the client would drop a falsy value (`null`, `0`), and reads parse it back.
            ...(e.metadata === null ? {} : { metadata: Buffer.from(e.metadata) as never }),
          }),
        ),
        { expectedRevision: toEsdbExpected(expectedRevision) },
      )
      .then(async (result) => ({
        nextExpectedRevision: result.nextExpectedRevision,
        position: result.position?.prepare ?? (await this.#head(stream))?.position ?? 0n,
      }));
    try {
      return await this.#tracked(() => pending);
    } catch (err) {
      throw this.#mapError(err, stream, expectedRevision);
    }
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.#mustBeOpen();
    const checked = checkReadStream(stream, options);
    if (checked.maxCount === 0) return [];
    const backwards = checked.direction === 'backwards';
    const out: RecordedEvent[] = [];
    try {
      await this.#tracked(async () => {
        for await (const resolved of this.#client.readStream(stream, {
          direction: backwards ? BACKWARDS : FORWARDS,
          fromRevision: checked.fromRevision ?? (backwards ? END : START),
          ...(checked.maxCount === undefined ? {} : { maxCount: checked.maxCount }),
        })) {
          const event = this.#recordedOf(resolved);
          if (event) out.push(event);
        }
      });
    } catch (err) {
      if (err instanceof StreamNotFoundError) return [];
      throw this.#mapError(err, stream);
    }
    return out;
  }

  async streamRevision(stream: string): Promise<bigint | undefined> {
    this.#mustBeOpen();
    checkReadStream(stream);
    return (await this.#head(stream))?.revision;
  }

  /** `$tb` in the stream's metadata: the server hides the earlier events from stream reads at once. */
  async truncateBefore(stream: string, revision: bigint): Promise<void> {
    this.#mustBeOpen();
    prepareTruncation(stream, revision, 'truncate');
    const head = await this.#head(stream);
    if (!head) throw new NotFoundError('stream', stream);
    if (revision > head.revision) throw truncationPastEnd(stream, revision, head.revision);
    await this.#raiseTruncateBefore(stream, revision);
  }

  /**
   * EventStoreDB cannot start a stream at a revision: `$tb` first (so nothing shows meanwhile), then
   * `revision` placeholder events, their ids derived from their place, so that a repeat after a failure
   * re-appends the same ones (a no-op) and goes on. No read hands a placeholder out.
   */
  async startStreamAt(stream: string, revision: bigint): Promise<void> {
    this.#mustBeOpen();
    prepareTruncation(stream, revision, 'start');
    const head = await this.#head(stream);
    if (head) throw new WrongExpectedVersionError(stream, 'no_stream', head.revision);
    await this.#raiseTruncateBefore(stream, revision);
    for (let from = 0n; from < revision; from += PLACEHOLDERS_PER_APPEND) {
      const to = from + PLACEHOLDERS_PER_APPEND < revision ? from + PLACEHOLDERS_PER_APPEND : revision;
      const placeholders: ReturnType<typeof jsonEvent>[] = [];
      for (let r = from; r < to; r++)
        placeholders.push(
          jsonEvent({ id: uuidv5(`${stream}#${r}`, PLACEHOLDER_IDS), type: PLACEHOLDER_TYPE, data: {} }),
        );
      const expected = from === 0n ? 'no_stream' : from - 1n;
      try {
        await this.#tracked(() =>
          this.#client.appendToStream(stream, placeholders, { expectedRevision: toEsdbExpected(expected) }),
        );
      } catch (err) {
        throw this.#mapError(err, stream, expected);
      }
    }
  }

  /**
   * Raises `$tb`, keeping the rest of the metadata; never lowers it (that would show truncated events
   * again). The metadata is read and written as the raw `$$<stream>` event: the client's
   * `getStreamMetadata` reports a log position as `metastreamRevision` (6.2.1), useless as an expected revision.
   */
  async #raiseTruncateBefore(stream: string, revision: bigint): Promise<void> {
    const metastream = `$$${stream}`;
    for (;;) {
      let last: ResolvedEvent | undefined;
      try {
        await this.#tracked(async () => {
          for await (const resolved of this.#client.readStream(metastream, {
            direction: BACKWARDS,
            fromRevision: END,
            maxCount: 1,
          }))
            last = resolved;
        });
      } catch (err) {
        if (!(err instanceof StreamNotFoundError)) throw this.#mapError(err, stream);
      }
      const data = last?.event?.isJson ? (last.event.data as Record<string, unknown>) : {};
      const current = data['$tb'];
      if (typeof current === 'number' && BigInt(current) >= revision) return;
      try {
        await this.#tracked(() =>
          this.#client.appendToStream(
            metastream,
            jsonEvent({ type: '$metadata', data: { ...data, $tb: Number(revision) } }),
            { expectedRevision: last?.event ? last.event.revision : NO_STREAM },
          ),
        );
        return;
      } catch (err) {
        // The metadata changed meanwhile (another truncation): read it again.
        if (!(err instanceof EsdbWrongExpectedVersionError)) throw this.#mapError(err, stream);
      }
    }
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.#mustBeOpen();
    const { after = 0n, maxCount, partition } = checkReadAll(options);
    const out: RecordedEvent[] = [];
    if (maxCount === 0) return out;
    let from = await this.#resumeFrom(after);
    // Everything at or before `seen` was handed out or skipped: pages overlap by one event.
    let seen = after;
    // `$`-stream events are dropped, so a page may bring fewer than asked: read on until enough or the end.
    // Each page is read to its end (leaving a gRPC read half-consumed can hang the client's dispose).
    for (;;) {
      let read = 0;
      const pageFrom = from;
      for (const resolved of await this.#page(from, FORWARDS, this.#pageSize)) {
        read++;
        const position = (resolved as AllStreamResolvedEvent).event?.position;
        if (position && read === this.#pageSize) from = position;
        if (!position || position.prepare <= seen) continue;
        seen = position.prepare;
        const event = this.#recordedOf(resolved);
        // EventStoreDB cannot compute a part: the other parts' events are read and dropped here.
        if (event && inPartition(event.stream, partition)) out.push(event);
      }
      if (maxCount !== undefined && out.length >= maxCount) return out.slice(0, maxCount);
      // A short page is the end; a page that moved nowhere would only repeat itself.
      if (read < this.#pageSize || samePosition(from, pageFrom)) return out;
    }
  }

  /** One page of `$all`, read to its end. */
  async #page(
    from: Position | typeof START | typeof END,
    direction: typeof FORWARDS | typeof BACKWARDS,
    maxCount: number,
  ): Promise<AllStreamResolvedEvent[]> {
    const page: AllStreamResolvedEvent[] = [];
    try {
      await this.#tracked(async () => {
        for await (const resolved of this.#client.readAll({ fromPosition: from, direction, maxCount }))
          page.push(resolved as AllStreamResolvedEvent);
      });
    } catch (err) {
      throw this.#mapError(err);
    }
    return page;
  }

  async headPosition(): Promise<bigint> {
    this.#mustBeOpen();
    // Backwards from the end, a page at a time, past EventStoreDB's own events (there may be many).
    let from: ReadFrom = END;
    for (;;) {
      const page = await this.#page(from, BACKWARDS, this.#pageSize);
      for (const resolved of page) {
        const event = this.#recordedOf(resolved);
        if (event) return event.position;
      }
      const oldest = page.at(-1)?.event?.position;
      if (page.length < this.#pageSize || !oldest || (typeof from === 'object' && samePosition(from, oldest)))
        return 0n;
      from = oldest;
    }
  }

  subscribeToAll(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    this.#mustBeOpen();
    const { after, streamPrefixes, known } = checkSubscribe(options);
    return new Observable<RecordedEvent>((subscriber) => {
      this.#subscribers.add(subscriber);
      let last = after;
      let stopped = false;
      let failures = 0;
      let current: { unsubscribe(): Promise<void> } | undefined;
      let retry: NodeJS.Timeout | undefined;
      let renewing = false;
      /** Renews after a transient failure (leader change, server restart, deadline, a stream that just ended). */
      const renew = (err: unknown): void => {
        current = undefined;
        if (stopped || renewing) return;
        if (err !== undefined && !isTransient(err) && !isUnavailable(err)) {
          subscriber.error(this.#mapError(err));
          return;
        }
        renewing = true;
        const delay = Math.min(10_000, this.#resubscribeAfterMs * 2 ** failures++);
        retry = setTimeout(() => {
          renewing = false;
          void start();
        }, delay);
      };
      const start = async (): Promise<void> => {
        let from: ReadFrom;
        try {
          from = await this.#resumeFrom(last, 'subscribe');
        } catch (err) {
          return renew(err);
        }
        if (stopped) return;
        const subscription = this.#client.subscribeToAll({
          fromPosition: from,
          filter: streamPrefixes ? streamNameFilter({ prefixes: [...streamPrefixes] }) : excludeSystemEvents(),
        });
        current = subscription;
        subscription.on('data', (resolved: AllStreamResolvedEvent) => {
          const event = this.#recordedOf(resolved);
          if (!event || event.position <= last) return;
          failures = 0;
          last = event.position;
          if (!known?.(event.stream, event.revision, event.position)) subscriber.next(event);
        });
        subscription.on('error', (err: unknown) => current === subscription && renew(err));
        // A live subscription does not end by itself: an end that nobody asked for is renewed too.
        subscription.on('end', () => current === subscription && renew(undefined));
      };
      void start();
      return () => {
        stopped = true;
        this.#subscribers.delete(subscriber);
        clearTimeout(retry);
        void current?.unsubscribe().catch(() => undefined);
      };
    });
  }

  /** Creates the group, starting at the end of the log, unless it exists (then its settings are kept). */
  async ensurePersistentGroup(name: string, settings: PersistentGroupSettings): Promise<'created' | 'exists'> {
    this.#mustBeOpen();
    try {
      await this.#tracked(() =>
        this.#client.createPersistentSubscriptionToAll(
          name,
          persistentSubscriptionToAllSettingsFromDefaults({
            startFrom: END,
            messageTimeout: settings.messageTimeoutMs,
            maxRetryCount: settings.maxRetryCount,
          }),
          { filter: streamNameFilter({ regex: settings.streamPattern }) },
        ),
      );
      return 'created';
    } catch (err) {
      if (err instanceof PersistentSubscriptionExistsError) return 'exists';
      throw this.#mapError(err);
    }
  }

  /** Deletes the group (its checkpoint and parked events go with it); false when there was none. */
  async deletePersistentGroup(name: string): Promise<boolean> {
    this.#mustBeOpen();
    try {
      await this.#tracked(() => this.#client.deletePersistentSubscriptionToAll(name));
      return true;
    } catch (err) {
      if (err instanceof PersistentSubscriptionDoesNotExistError) return false;
      throw this.#mapError(err);
    }
  }

  /**
   * Joins the group as one competing consumer, holding at most `bufferSize` un-acked events. The stream
   * errors when the server drops the consumer (restart, leader change, group deleted): join again to go on;
   * events this consumer had not acked are retried to the group's others meanwhile.
   */
  joinPersistentGroup(name: string, options: { bufferSize: number; confirmed?: () => void }): Observable<GroupMessage> {
    return new Observable<GroupMessage>((subscriber) => {
      if (this.#closed) {
        subscriber.error(new IllegalStateError('the EventStoreDB event store is closed'));
        return;
      }
      const consumer = this.#client.subscribeToPersistentSubscriptionToAll(name, { bufferSize: options.bufferSize });
      this.#subscribers.add(subscriber);
      consumer.on('confirmation', () => options.confirmed?.());
      consumer.on('data', (resolved) => {
        const event = this.#recordedOf(resolved);
        // Only a filter that lets `$`-streams through hands them out; they are none of the consumer's business.
        if (!event) return void consumer.ack(resolved).catch(() => {});
        subscriber.next({
          event,
          retryCount: resolved.retryCount,
          ack: () => consumer.ack(resolved),
          nack: (action, reason) => consumer.nack(action, reason, resolved),
        });
      });
      consumer.on('error', (err) => subscriber.error(this.#mapError(err)));
      consumer.on('end', () =>
        subscriber.error(
          new KairosError(ErrorCode.unavailable, `the persistent subscription '${name}' ended`, { name }),
        ),
      );
      return () => {
        this.#subscribers.delete(subscriber);
        consumer.removeAllListeners('data');
        void consumer.unsubscribe().catch(() => {});
      };
    });
  }

  /** Lets appends already issued finish, completes live subscriptions, then closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Calls issued before it finish whole: `dispose()` would cut reads short as if they had ended.
    await Promise.all([...this.#calls]);
    for (const subscriber of [...this.#subscribers]) subscriber.complete();
    await this.#client.dispose();
  }

  /** Runs a call `close()` waits for. */
  async #tracked<T>(call: () => Promise<T>): Promise<T> {
    const running = call();
    const settled = running.then(
      () => undefined,
      () => undefined,
    );
    this.#calls.add(settled);
    void settled.then(() => this.#calls.delete(settled));
    return running;
  }

  #mustBeOpen(): void {
    if (this.#closed) throw new IllegalStateError('the EventStoreDB event store is closed');
  }

  /** The stream's last revision and its position, or undefined when it does not exist. */
  async #head(stream: string): Promise<{ revision: bigint; position: bigint } | undefined> {
    const [last] = await this.readStream(stream, { direction: 'backwards', maxCount: 1 });
    return last && { revision: last.revision, position: last.position };
  }

  /**
   * Where to start on `$all` to see every event after `after`: reads start at the position given, catch-up
   * subscriptions just after it. EventStoreDB accepts only positions where an event starts: `after` itself
   * when it is one (what the port hands out always is; recent ones are remembered), else — found by reading
   * on from the start — the first event past it (to read from) or the last one not past it (to subscribe
   * after).
   */
  async #resumeFrom(after: bigint, use: 'read' | 'subscribe' = 'read'): Promise<ReadFrom> {
    if (after <= 0n) return START;
    const known = this.#commits.get(after);
    if (known !== undefined) return { commit: known, prepare: after };
    const at: Position = { commit: after, prepare: after };
    try {
      await this.#page(at, FORWARDS, 1);
      return at;
    } catch (err) {
      // Refused as no event's position: look for its neighbours. Anything else is for the caller.
      if (isKairosError(err) && err.code === ErrorCode.unavailable) throw err;
    }
    let from: ReadFrom = START;
    let before: ReadFrom = START;
    for (;;) {
      const page = await this.#page(from, FORWARDS, this.#pageSize);
      for (const resolved of page) {
        const position = resolved.event?.position;
        if (!position) continue;
        if (position.prepare > after) return use === 'read' ? position : before;
        before = position;
      }
      const last = page.at(-1)?.event?.position;
      if (page.length < this.#pageSize || !last) return use === 'read' ? END : before;
      from = last;
    }
  }

  /** The port's view of a resolved event; undefined for EventStoreDB's own (`$`) streams and links. */
  #recordedOf(resolved: ResolvedEvent | AllStreamResolvedEvent): RecordedEvent | undefined {
    const event = resolved.event;
    if (!event || event.streamId.startsWith('$') || event.type === PLACEHOLDER_TYPE) return undefined;
    const position = event.position;
    if (position) this.#remember(position);
    return {
      id: event.id,
      stream: event.streamId,
      revision: event.revision,
      position: position?.prepare ?? resolved.commitPosition ?? 0n,
      type: event.type,
      data: event.isJson ? event.data : decodeBinary(event.data as Uint8Array),
      metadata: emptyToUndefined(event.metadata),
      time: event.created,
    };
  }

  #remember(position: Position): void {
    this.#commits.set(position.prepare, position.commit);
    // Bounded: only recent positions are resumed from in practice (paging, renewing a subscription).
    if (this.#commits.size > 10_000) this.#commits.delete(this.#commits.keys().next().value as bigint);
  }

  #mapError(err: unknown, stream?: string, expected?: PreparedAppend['expectedRevision']): Error {
    if (err instanceof EsdbWrongExpectedVersionError && stream !== undefined && expected !== undefined) {
      const actual = err.actualVersion === NO_STREAM ? undefined : (err.actualVersion as bigint);
      return new WrongExpectedVersionError(stream, expected, actual);
    }
    if (err instanceof KairosError) return err;
    if (isTransient(err))
      return new KairosError(
        ErrorCode.unavailable,
        `EventStoreDB is unavailable: ${err instanceof Error ? err.message : String(err)}`,
        stream === undefined ? {} : { stream },
      );
    return err instanceof Error ? err : new Error(String(err));
  }
}

type ReadFrom = Position | typeof START | typeof END;

/** What `startStreamAt` fills the revisions below the start with (truncated at once, never handed out). */
const PLACEHOLDER_TYPE = 'KairosTruncatedPlaceholder';
const PLACEHOLDER_IDS = 'b3c1f0de-5a7e-4f2b-8d6c-1e9a7b4c2d50';
// Well under EventStoreDB's 1 MiB per append: a placeholder is a type, an id and `{}`.
const PLACEHOLDERS_PER_APPEND = 2_000n;

const samePosition = (a: ReadFrom, b: ReadFrom): boolean =>
  typeof a === 'object' && typeof b === 'object' ? a.commit === b.commit && a.prepare === b.prepare : a === b;

const toEsdbExpected = (expected: PreparedAppend['expectedRevision']): AppendExpectedRevision => {
  if (expected === 'any') return ANY;
  if (expected === 'no_stream' || expected === -1n) return NO_STREAM;
  if (expected === 'stream_exists') return STREAM_EXISTS;
  return expected;
};

const matches = (expected: PreparedAppend['expectedRevision'], revision: bigint | undefined): boolean => {
  if (expected === 'any') return true;
  if (expected === 'no_stream' || expected === -1n) return revision === undefined;
  if (expected === 'stream_exists') return revision !== undefined;
  return revision === expected;
};

/** The client's errors that a retry may cure: the server is down, restarting, changing leader, slow. */
/** An error already mapped to the port's `unavailable` (by a read inside the adapter). */
const isUnavailable = (err: unknown): boolean => isKairosError(err) && err.code === ErrorCode.unavailable;

const isTransient = (err: unknown): boolean => {
  const type = (err as { type?: unknown } | null)?.type;
  // `cancelled` is what a server restart looks like to a live call (the client reconnects on it too);
  // cancellations of our own are never mapped (an unsubscribed subscription is stopped first).
  return (
    type === 'unavailable' ||
    type === 'cancelled' ||
    type === 'deadline-exceeded' ||
    type === 'not-leader' ||
    type === 'timeout'
  );
};

const decodeBinary = (data: Uint8Array): unknown => {
  const text = Buffer.from(data).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
};

const emptyToUndefined = (metadata: unknown): unknown => {
  if (metadata === undefined) return undefined;
  if (metadata instanceof Uint8Array) return metadata.length === 0 ? undefined : decodeBinary(metadata);
  return metadata;
};
