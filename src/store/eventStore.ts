import type { Observable } from 'rxjs';
import { ErrorCode, KairosError } from '../../domain/errors/index.js';
import type { StreamPartition } from './streamPartition.js';

/**
 * The event store port, modelled on EventStoreDB's semantics so the SQLite and EventStoreDB adapters
 * are interchangeable: streams with 0-based revisions, one global position across all streams,
 * optimistic concurrency by expected revision, idempotent re-append of the same event ids.
 */

/** `no_stream`: the stream must not exist. `stream_exists`: it must. `any`: no check. bigint: the last revision must be this. */
export type ExpectedRevision = 'no_stream' | 'any' | 'stream_exists' | bigint;

export type EventData = {
  /** UUID; a re-append of an already stored id at the same place is a no-op (idempotency). */
  id: string;
  type: string;
  data: unknown;
  metadata?: unknown;
};

export type RecordedEvent = {
  id: string;
  stream: string;
  /** Position of the event in its stream, from 0. */
  revision: bigint;
  /** Position of the event in the whole log; strictly increasing in commit order, with gaps allowed. */
  position: bigint;
  type: string;
  data: unknown;
  metadata: unknown;
  /** When the store recorded it. */
  time: Date;
};

export type AppendResult = {
  /** Revision of the last event now in the stream: the `expectedRevision` of the next append. */
  nextExpectedRevision: bigint;
  /** Global position of the last event appended (or of the already stored one, for an idempotent re-append). */
  position: bigint;
};

export type AppendOptions = { expectedRevision?: ExpectedRevision };

export type ReadStreamOptions = {
  /** First revision to read (inclusive); default 0 forwards, the end backwards. */
  fromRevision?: bigint;
  direction?: 'forwards' | 'backwards';
  maxCount?: number;
};

export type ReadAllOptions = {
  /** Read events with a position strictly greater than this; default: from the start. */
  after?: bigint;
  /** Up to this many events (of the partition, if one is asked); fewer means none are left. */
  maxCount?: number;
  /** Only the events of the streams in this part of the log (`StreamPartition`); default: every stream. */
  partition?: StreamPartition;
};

export type SubscriptionFilter = {
  /** Only streams whose name starts with one of these. */
  streamPrefixes?: readonly string[];
};

export type SubscribeOptions = SubscriptionFilter & {
  /** Deliver events with a position strictly greater than this (catch-up), then live ones; default: from the start. */
  after?: bigint;
  /**
   * Events the subscriber already holds (a node's own appends, applied when they resolve): passed over
   * before they are decoded. Asked once per event, in position order (its `position` in the log too:
   * a subscriber that skips it has still followed the log that far); it must not throw.
   */
  known?: (stream: string, revision: bigint, position: bigint) => boolean;
};

/** One append of a batch: used by group commit so many streams' appends share one transaction. */
export type StreamAppend = { stream: string; events: readonly EventData[]; expectedRevision?: ExpectedRevision };

/** The outcome of one append inside a batch: each succeeds or fails on its own. */
export type BatchAppendResult = { ok: true; result: AppendResult } | { ok: false; error: Error };

export interface EventStore {
  appendToStream(stream: string, events: readonly EventData[], options?: AppendOptions): Promise<AppendResult>;
  /**
   * Appends to several streams at once: each append keeps its own expected-revision check and its own
   * result, but the store may persist them together (one transaction, one fsync).
   */
  appendBatch(appends: readonly StreamAppend[]): Promise<BatchAppendResult[]>;
  /** Events of one stream; an empty array when the stream does not exist. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** The revision of the last event of a stream, or undefined when the stream does not exist. */
  streamRevision(stream: string): Promise<bigint | undefined>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** The position of the newest event, or 0n for an empty log. */
  headPosition(): Promise<bigint>;
  /**
   * Truncates a stream before `revision` (retention): stream reads no longer return its earlier events,
   * and the store removes them — SQLite and in-memory at once, EventStoreDB (`$tb` in the stream's
   * metadata) at its next scavenge, so its `$all` reads and subscriptions may still return them until
   * then. The stream keeps its revisions: its last revision, expected revisions and later appends are
   * unchanged. `revision` is at most the stream's last revision (its last event always stays); at or
   * below where the stream already starts, nothing changes (a truncation never moves back). Fails with
   * NotFoundError if the stream does not exist, ValidationError naming `stream` or `revision` on bad input.
   */
  truncateBefore(stream: string, revision: bigint): Promise<void>;
  /**
   * Creates a stream with no events whose first event will be appended at `revision` (expected
   * revision `revision - 1n`), as if `revision` events had been appended and truncated: how an import
   * restores a truncated stream with its revisions. Until that first event, stream reads return
   * nothing; `streamRevision` is `revision - 1n` (undefined on EventStoreDB, which writes and truncates
   * `revision` tiny placeholder events, since it cannot start a stream at a revision). Fails with
   * WrongExpectedVersionError if the stream exists (a repeat on EventStoreDB before the first event is a no-op).
   */
  startStreamAt(stream: string, revision: bigint): Promise<void>;
  /**
   * Catch-up then live: every event after `after` in position order, then new ones as they are
   * committed (also those committed by other processes sharing the store). Unsubscribing stops it.
   */
  subscribeToAll(options?: SubscribeOptions): Observable<RecordedEvent>;
  close(): Promise<void>;
}

export class WrongExpectedVersionError extends KairosError {
  readonly stream: string;
  readonly expected: ExpectedRevision;
  /** The stream's actual last revision; undefined when the stream does not exist. */
  readonly actual: bigint | undefined;
  constructor(stream: string, expected: ExpectedRevision, actual: bigint | undefined) {
    super(
      ErrorCode.wrongExpectedVersion,
      `append to '${stream}' expected revision ${String(expected)} but the stream is at ${actual === undefined ? 'no_stream' : String(actual)}`,
      { stream, expected: String(expected), actual: actual === undefined ? null : String(actual) },
    );
    this.stream = stream;
    this.expected = expected;
    this.actual = actual;
  }
}

export const isWrongExpectedVersionError = (e: unknown): e is WrongExpectedVersionError =>
  e instanceof WrongExpectedVersionError;

/** An append reused event ids that are stored elsewhere (another stream or another place in this one). */
export class DuplicateEventIdError extends KairosError {
  constructor(stream: string, ids: readonly string[]) {
    super(
      ErrorCode.alreadyExists,
      `events ${ids.join(', ')} are already stored at another place than '${stream}' expects`,
      { stream, ids },
    );
  }
}

export const isDuplicateEventIdError = (e: unknown): e is DuplicateEventIdError => e instanceof DuplicateEventIdError;
