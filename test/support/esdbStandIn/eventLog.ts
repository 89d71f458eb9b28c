// EventStoreDB protocol stand-in for tests (not EventStoreDB): the in-memory transaction log behind it, with
// EventStoreDB's rules for expected versions, idempotent re-appends, log positions and stream metadata.
import { randomUUID } from 'node:crypto';

/**
 * A place in the log. Events sit at `{commit: p, prepare: p}` (p = the byte offset of their record); the pages
 * of a catch-up read end at `{commit: next record, prepare: 0}`, which is also what their checkpoints carry.
 */
export type LogPosition = { readonly commit: number; readonly prepare: number };

export const comparePositions = (a: LogPosition, b: LogPosition): number =>
  a.commit - b.commit || a.prepare - b.prepare;

export const eventPosition = (e: StoredEvent): LogPosition => ({ commit: e.position, prepare: e.position });

/** The position right after an event's record: where a read that stopped at it continues. */
export const afterEvent = (e: StoredEvent): LogPosition => ({ commit: e.position + e.size, prepare: 0 });

export type StoredEvent = {
  readonly stream: string;
  readonly revision: number;
  /** Lower-case, as the server prints a Guid. */
  readonly id: string;
  readonly type: string;
  readonly contentType: string;
  readonly data: Uint8Array;
  readonly metadata: Uint8Array;
  /** .NET ticks (100 ns) since the Unix epoch, as the `created` metadata of a recorded event. */
  readonly created: bigint;
  /** Byte offset of its record in the log; its commit and prepare position. */
  readonly position: number;
  readonly size: number;
};

export type ProposedEvent = {
  readonly id: string;
  readonly type: string;
  readonly contentType: string;
  readonly data: Uint8Array;
  readonly metadata: Uint8Array;
};

/** EventStoreDB's internal expected versions: a revision, or one of these markers. */
export const ExpectedVersion = { any: -2, noStream: -1, streamExists: -4 } as const;

export type AppendOutcome =
  /** `lastRevision` -1: the stream still does not exist (an empty append). */
  | { readonly ok: true; readonly lastRevision: number; readonly position: number }
  | { readonly ok: false; readonly currentRevision: number };

export type ReadStreamResult = { readonly exists: boolean; readonly events: readonly StoredEvent[] };

type StreamMetadata = { maxCount?: number; maxAgeSeconds?: number; truncateBefore?: number };

// Record sizes only have to be plausible: positions are byte offsets with gaps, never consecutive numbers.
const EPOCH_RECORD_SIZE = 128;
const RECORD_HEADER_SIZE = 90;
const TICKS_PER_MS = 10_000n;
const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

const isMetastream = (stream: string): boolean => stream.startsWith('$$');

export class EventLog {
  /** Every event in log order. */
  readonly events: StoredEvent[] = [];
  private readonly streams = new Map<string, StoredEvent[]>();
  // The server keeps this in a bounded cache of recent writes; here it holds every id ever written.
  private readonly committedIds = new Map<string, { stream: string; revision: number }>();
  private readonly recordStarts = new Set<number>([0]);
  /** Where the next record will be written. */
  private tail = EPOCH_RECORD_SIZE;
  private readonly listeners = new Set<(events: readonly StoredEvent[]) => void>();

  constructor() {
    // A fresh EventStoreDB is never empty: its first election writes an epoch record and this event.
    const epochId = randomUUID();
    this.append('$epoch-information', ExpectedVersion.any, [
      {
        id: randomUUID(),
        type: '$epoch-information',
        contentType: 'application/json',
        data: Buffer.from(
          JSON.stringify({
            epochPosition: 0,
            epochNumber: 0,
            epochId,
            prevEpochPosition: -1,
            leaderInstanceId: epochId,
          }),
        ),
        metadata: new Uint8Array(),
      },
    ]);
  }

  lastRevision(stream: string): number {
    return (this.streams.get(stream)?.length ?? 0) - 1;
  }

  /** Every event of a stream, metadata not applied (what live subscriptions see). */
  streamEvents(stream: string): readonly StoredEvent[] {
    return this.streams.get(stream) ?? [];
  }

  /** Calls `listener` synchronously with the events of every append, after they are readable. */
  onCommit(listener: (events: readonly StoredEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The server's commit check (IndexWriter.CheckCommit), then the write; ids are compared lower-case. */
  append(stream: string, expected: number, proposed: readonly ProposedEvent[]): AppendOutcome {
    const events = proposed.map((e) => ({ ...e, id: e.id.toLowerCase() }));
    const current = this.lastRevision(stream);
    if (expected === ExpectedVersion.streamExists && current < 0 && this.lastRevision(`$$${stream}`) < 0)
      return { ok: false, currentRevision: current };

    if (expected === ExpectedVersion.any || expected === ExpectedVersion.streamExists) {
      // Idempotency by id alone: the first id decides; a batch only partly stored is refused.
      let last: number | undefined;
      for (const [i, e] of events.entries()) {
        const stored = this.committedIds.get(e.id);
        if (!stored || stored.stream !== stream) {
          if (i === 0) return this.write(stream, current, events);
          return { ok: false, currentRevision: current };
        }
        last = stored.revision;
      }
      return last === undefined ? this.write(stream, current, events) : this.alreadyWritten(stream, last);
    }

    if (expected < current) {
      // Idempotency by place: every id must already sit at the revision this append would give it.
      let revision = expected;
      for (const e of events) {
        revision += 1;
        if (this.streams.get(stream)?.[revision]?.id !== e.id) return { ok: false, currentRevision: current };
      }
      if (revision === expected) return { ok: false, currentRevision: current };
      return this.alreadyWritten(stream, revision);
    }
    if (expected > current) return { ok: false, currentRevision: current };
    return this.write(stream, current, events);
  }

  /** A stream read with its metadata applied: events beyond `$maxCount`, `$maxAge` or `$tb` are invisible. */
  readStream(
    stream: string,
    from: number | 'start' | 'end',
    direction: 'forwards' | 'backwards',
    maxCount: number,
  ): ReadStreamResult {
    const all = this.streams.get(stream);
    if (!all) return { exists: false, events: [] };
    const visible = this.visibleEvents(stream, all);
    const last = all.length - 1;
    if (direction === 'forwards') {
      const start = from === 'start' ? 0 : from === 'end' ? last + 1 : from;
      return { exists: true, events: visible.filter((e) => e.revision >= start).slice(0, maxCount) };
    }
    const start = from === 'start' ? 0 : from === 'end' ? last : from;
    return {
      exists: true,
      events: visible
        .filter((e) => e.revision <= start)
        .reverse()
        .slice(0, maxCount),
    };
  }

  /** The events of `stream` visible after `revision`, for a stream subscription catching up. */
  visibleAfter(stream: string, revision: number): StoredEvent[] {
    const all = this.streams.get(stream);
    return all ? this.visibleEvents(stream, all).filter((e) => e.revision > revision) : [];
  }

  /** Index in `events` of the first event at or after `position`. */
  indexAtOrAfter(position: LogPosition): number {
    let low = 0;
    let high = this.events.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (comparePositions(eventPosition(this.events[mid] as StoredEvent), position) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Index in `events` of the first event whose record does not end at or before `position`. */
  indexAfterRecordsEndingBy(position: LogPosition): number {
    let low = 0;
    let high = this.events.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const e = this.events[mid] as StoredEvent;
      const end = e.position + e.size;
      if (comparePositions({ commit: end, prepare: end }, position) <= 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** $all reads and subscriptions refuse a commit position that falls inside a record. */
  isReadablePosition(position: LogPosition): boolean {
    return position.commit >= this.tail || this.recordStarts.has(position.commit);
  }

  private alreadyWritten(stream: string, lastRevision: number): AppendOutcome {
    const last = this.streams.get(stream)?.[lastRevision] as StoredEvent;
    return { ok: true, lastRevision, position: last.position };
  }

  private write(stream: string, current: number, proposed: readonly ProposedEvent[]): AppendOutcome {
    if (proposed.length === 0) {
      // An empty write still puts a (data-less) record in the log, and answers with its position.
      const position = this.reserve(RECORD_HEADER_SIZE + utf8Length(stream));
      return { ok: true, lastRevision: current, position };
    }
    const created = BigInt(Date.now()) * TICKS_PER_MS;
    const streamEvents = this.streams.get(stream) ?? [];
    this.streams.set(stream, streamEvents);
    const written = proposed.map((e, i): StoredEvent => {
      const size = RECORD_HEADER_SIZE + utf8Length(stream) + utf8Length(e.type) + e.data.length + e.metadata.length;
      const stored: StoredEvent = {
        ...e,
        stream,
        revision: current + 1 + i,
        created,
        position: this.reserve(size),
        size,
      };
      streamEvents.push(stored);
      this.events.push(stored);
      this.committedIds.set(stored.id, { stream, revision: stored.revision });
      return stored;
    });
    for (const listener of this.listeners) listener(written);
    const last = written[written.length - 1] as StoredEvent;
    return { ok: true, lastRevision: last.revision, position: last.position };
  }

  private reserve(size: number): number {
    const position = this.tail;
    this.recordStarts.add(position);
    this.tail += size;
    return position;
  }

  private visibleEvents(stream: string, all: readonly StoredEvent[]): readonly StoredEvent[] {
    // A metastream keeps only its last event, whatever its own metadata says.
    const metadata: StreamMetadata = isMetastream(stream) ? { maxCount: 1 } : this.metadataOf(stream);
    let first = 0;
    if (metadata.maxCount !== undefined) first = Math.max(first, all.length - metadata.maxCount);
    if (metadata.truncateBefore !== undefined) first = Math.max(first, metadata.truncateBefore);
    const visible = all.slice(first);
    if (metadata.maxAgeSeconds === undefined) return visible;
    const oldest = BigInt(Date.now() - metadata.maxAgeSeconds * 1000) * TICKS_PER_MS;
    return visible.filter((e) => e.created >= oldest);
  }

  private metadataOf(stream: string): StreamMetadata {
    const meta = this.streams.get(`$$${stream}`);
    const last = meta?.[meta.length - 1];
    if (!last) return {};
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(last.data).toString('utf8'));
    } catch {
      // The server reads unparsable metadata as none.
      return {};
    }
    if (typeof raw !== 'object' || raw === null) return {};
    const { $maxCount, $maxAge, $tb } = raw as Record<string, unknown>;
    const positive = (v: unknown): number | undefined =>
      Number.isInteger(v) && (v as number) > 0 ? (v as number) : undefined;
    const truncateBefore = Number.isInteger($tb) && ($tb as number) >= 0 ? ($tb as number) : undefined;
    return { maxCount: positive($maxCount), maxAgeSeconds: positive($maxAge), truncateBefore };
  }
}
