import { ValidationError, type FieldIssue } from '../../domain/errors/index.js';
import {
  DuplicateEventIdError,
  WrongExpectedVersionError,
  type AppendResult,
  type EventData,
  type ExpectedRevision,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type StreamAppend,
  type SubscribeOptions,
} from './eventStore.js';
import { MAX_PARTITIONS } from './streamPartition.js';

/**
 * The rules every adapter shares, as pure functions: input validation (so a bad append fails the same
 * way everywhere, before anything is written) and the append decision (expected revision and
 * idempotent re-append), which each adapter applies to its own view of the stored data.
 */

/** An event as adapters store it: the id normalised, data and metadata already JSON text. */
export type PreparedEvent = { id: string; type: string; data: string; metadata: string | null };

export type PreparedAppend = {
  stream: string;
  events: PreparedEvent[];
  expectedRevision: ExpectedRevision;
  /**
   * Set on an empty append only (`prepareTruncation`), once it is decided: an existing stream loses its
   * events before this revision; a stream that does not exist is created empty, its next revision this
   * one. How `truncateBefore` and `startStreamAt` ride the embedded stores' group commit.
   */
  truncateBefore?: bigint;
};

/** A stored event as both adapters keep it: data and metadata as JSON text, time in epoch ms. */
export type StoredEvent = PreparedEvent & { stream: string; revision: bigint; position: bigint; time: number | bigint };

/** A stored event as the port hands it out: parsed afresh on every read, so no reader shares an object. */
export const recordedEventOf = (s: StoredEvent): RecordedEvent => ({
  id: s.id,
  stream: s.stream,
  revision: s.revision,
  position: s.position,
  type: s.type,
  data: JSON.parse(s.data) as unknown,
  metadata: s.metadata === null ? undefined : (JSON.parse(s.metadata) as unknown),
  time: new Date(Number(s.time)),
});

/** Where an already stored event id lives. */
export type StoredId = { stream: string; revision: bigint; position: bigint };

/** What the stream looks like now: its last revision and that event's position, or undefined if it does not exist. */
export type StreamHead = { revision: bigint; position: bigint } | undefined;

export type AppendDecision =
  { kind: 'write'; firstRevision: bigint } | { kind: 'done'; result: AppendResult } | { kind: 'fail'; error: Error };

// EventStoreDB requires UUID event ids; requiring them here keeps the SQLite and EventStoreDB adapters
// interchangeable. Any version is accepted (v8 derived fire ids, v7; older logs hold v5 and v4).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// A lone surrogate cannot be encoded as UTF-8, so SQLite would store a different name than asked.
const LONE_SURROGATE = /\p{Cs}/u;
const MAX_STREAM_LENGTH = 1024;

const streamIssue = (stream: unknown, path: string): FieldIssue | undefined => {
  if (typeof stream !== 'string') return { path, message: `must be a string, got ${typeof stream}` };
  if (stream.length === 0) return { path, message: 'must not be empty' };
  if (stream.length > MAX_STREAM_LENGTH) return { path, message: `must be at most ${MAX_STREAM_LENGTH} characters` };
  // EventStoreDB reserves `$` streams for itself; refusing them here keeps logs portable between adapters.
  if (stream.startsWith('$')) return { path, message: "must not start with '$' (reserved for system streams)" };
  if (LONE_SURROGATE.test(stream)) return { path, message: 'must be well-formed Unicode (lone surrogate)' };
  return undefined;
};

/** The path of event `i` of an append, or of its `field`. */
const eventPath = (i: number, field?: string): string => (field ? `events[${i}].${field}` : `events[${i}]`);

/** The JSON text of event `i`'s `field`, or undefined with the issue recorded. */
const toJson = (value: unknown, i: number, field: string, issues: FieldIssue[]): string | undefined => {
  try {
    const json = JSON.stringify(value);
    // JSON.stringify returns undefined for undefined, functions and symbols: nothing that would read back.
    if (typeof json === 'string') return json;
    issues.push({ path: eventPath(i, field), message: `is not JSON-serialisable (${typeof value})` });
  } catch (e) {
    issues.push({
      path: eventPath(i, field),
      message: `is not JSON-serialisable: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
  return undefined;
};

const expectedIssue = (expected: unknown): FieldIssue | undefined => {
  if (expected === 'any' || expected === 'no_stream' || expected === 'stream_exists') return undefined;
  if (typeof expected === 'bigint') {
    // -1n is what an empty append to a missing stream returns as next expected revision: it means no_stream.
    return expected >= -1n ? undefined : { path: 'expectedRevision', message: 'must be >= -1n' };
  }
  return {
    path: 'expectedRevision',
    message: `must be 'any', 'no_stream', 'stream_exists' or a bigint revision, got ${describe(expected)}`,
  };
};

const describe = (value: unknown): string => {
  if (typeof value === 'number') return `the number ${value} (use a bigint)`;
  if (typeof value === 'string') return `'${value}'`;
  return value === null ? 'null' : typeof value;
};

/** Validates and serialises one append; throws a ValidationError naming every bad field. */
export const prepareAppend = (stream: unknown, events: unknown, expected: unknown = 'any'): PreparedAppend => {
  const issues: FieldIssue[] = [];
  const sIssue = streamIssue(stream, 'stream');
  if (sIssue) issues.push(sIssue);
  const eIssue = expectedIssue(expected);
  if (eIssue) issues.push(eIssue);
  const prepared: PreparedEvent[] = [];
  if (!Array.isArray(events)) {
    issues.push({ path: 'events', message: 'must be an array' });
  } else {
    // Paths are spelled out only for an issue, and ids compared only between several events: a fire's
    // append is one event, and every fire goes through here.
    const seen = events.length > 1 ? new Map<string, number>() : null;
    for (let i = 0; i < events.length; i++) {
      const raw: unknown = events[i];
      if (typeof raw !== 'object' || raw === null) {
        issues.push({ path: eventPath(i), message: 'must be an object' });
        continue;
      }
      const event = raw as Partial<EventData>;
      let id = '';
      if (typeof event.id !== 'string' || !UUID.test(event.id)) {
        issues.push({ path: eventPath(i, 'id'), message: 'must be a UUID' });
      } else {
        // Stored lower-case, as EventStoreDB renders UUIDs, so `A…` and `a…` are the same event.
        id = event.id.toLowerCase();
        const first = seen?.get(id);
        if (first !== undefined) issues.push({ path: eventPath(i, 'id'), message: `repeats events[${first}].id` });
        else seen?.set(id, i);
      }
      if (typeof event.type !== 'string' || event.type.length === 0) {
        issues.push({ path: eventPath(i, 'type'), message: 'must be a non-empty string' });
      }
      const data = toJson(event.data, i, 'data', issues);
      const metadata = event.metadata === undefined ? null : (toJson(event.metadata, i, 'metadata', issues) ?? null);
      if (data !== undefined) prepared.push({ id, type: event.type as string, data, metadata });
    }
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return { stream: stream as string, events: prepared, expectedRevision: expected as ExpectedRevision };
};

/**
 * Validates a truncation (`truncateBefore`) or a start (`startStreamAt`) as the empty append that
 * carries it: the stream must exist for the one (`stream_exists`), and must not for the other (`no_stream`).
 */
export const prepareTruncation = (
  stream: unknown,
  revision: unknown,
  kind: 'truncate' | 'start',
): PreparedAppend & { truncateBefore: bigint } => {
  const issues: FieldIssue[] = [];
  const sIssue = streamIssue(stream, 'stream');
  if (sIssue) issues.push(sIssue);
  // A stream started at 0 would be a stream like any other, but one that exists with no event.
  const least = kind === 'truncate' ? 0n : 1n;
  if (typeof revision !== 'bigint' || revision < least)
    issues.push({ path: 'revision', message: `must be a bigint >= ${least}n, got ${describe(revision)}` });
  if (issues.length > 0) throw new ValidationError(issues);
  return {
    stream: stream as string,
    events: [],
    expectedRevision: kind === 'truncate' ? 'stream_exists' : 'no_stream',
    truncateBefore: revision as bigint,
  };
};

/** A truncation may not remove a stream's last event: the refusal, naming `revision`. */
export const truncationPastEnd = (stream: string, revision: bigint, last: bigint): ValidationError =>
  new ValidationError([
    {
      path: 'revision',
      message: `must be at most ${last}, the last revision of '${stream}' (its last event is never truncated), got ${revision}`,
    },
  ]);

/** Validates one append of a batch, returning the error instead of throwing it. */
export const prepareBatchEntry = (entry: StreamAppend): PreparedAppend | Error => {
  try {
    if (typeof entry !== 'object' || entry === null)
      throw new ValidationError([{ path: '', message: 'must be an object' }]);
    return prepareAppend(entry.stream, entry.events, entry.expectedRevision ?? 'any');
  } catch (e) {
    return e as Error;
  }
};

const revisionMatches = (expected: ExpectedRevision, head: StreamHead): boolean => {
  if (expected === 'any') return true;
  if (expected === 'no_stream' || expected === -1n) return head === undefined;
  if (expected === 'stream_exists') return head !== undefined;
  return head !== undefined && head.revision === expected;
};

/** Would `expected` have accepted these events at the place they are stored (first one at `firstRevision`)? */
const placementMatches = (expected: ExpectedRevision, firstRevision: bigint): boolean => {
  if (expected === 'any' || expected === 'stream_exists') return true;
  if (expected === 'no_stream' || expected === -1n) return firstRevision === 0n;
  return expected === firstRevision - 1n;
};

/**
 * Decides one append against the store's current view. `storedIds[i]` is where the i-th event id is
 * already stored, if anywhere. Rules, in order:
 * 1. none of the ids stored: the expected revision decides (write or WrongExpectedVersionError);
 * 2. all stored, consecutively and in order, in this stream, at a place `expected` would have accepted:
 *    an idempotent re-append, a no-op returning the stored revision and position;
 * 3. all stored there but `expected` would not have accepted that place: WrongExpectedVersionError;
 * 4. otherwise (some of them, elsewhere, out of order): DuplicateEventIdError.
 */
export const decideAppend = (
  append: PreparedAppend,
  head: StreamHead,
  storedIds: readonly (StoredId | undefined)[],
): AppendDecision => {
  const { stream, events, expectedRevision } = append;
  const found = storedIds.filter((s): s is StoredId => s !== undefined);
  if (found.length === 0) {
    if (!revisionMatches(expectedRevision, head)) {
      return { kind: 'fail', error: new WrongExpectedVersionError(stream, expectedRevision, head?.revision) };
    }
    if (events.length === 0) {
      // Nothing to write: report where the stream is (-1n and position 0n when it does not exist).
      return { kind: 'done', result: { nextExpectedRevision: head?.revision ?? -1n, position: head?.position ?? 0n } };
    }
    return { kind: 'write', firstRevision: head === undefined ? 0n : head.revision + 1n };
  }
  const first = found[0] as StoredId;
  const inPlace =
    found.length === events.length &&
    found.every((s, i) => s.stream === stream && s.revision === first.revision + BigInt(i));
  if (!inPlace) {
    return {
      kind: 'fail',
      error: new DuplicateEventIdError(
        stream,
        events.filter((_, i) => storedIds[i] !== undefined).map((e) => e.id),
      ),
    };
  }
  if (!placementMatches(expectedRevision, first.revision)) {
    return { kind: 'fail', error: new WrongExpectedVersionError(stream, expectedRevision, head?.revision) };
  }
  const last = found[found.length - 1] as StoredId;
  return { kind: 'done', result: { nextExpectedRevision: last.revision, position: last.position } };
};

/** Validated read options, with the defaults made explicit. `maxCount` undefined means no limit. */
export const checkReadStream = (
  stream: unknown,
  options: ReadStreamOptions = {},
): ReadStreamOptions & { direction: 'forwards' | 'backwards' } => {
  const issues: FieldIssue[] = [];
  const sIssue = streamIssue(stream, 'stream');
  if (sIssue) issues.push(sIssue);
  const direction = options.direction ?? 'forwards';
  if (direction !== 'forwards' && direction !== 'backwards')
    issues.push({ path: 'direction', message: "must be 'forwards' or 'backwards'" });
  if (options.fromRevision !== undefined && (typeof options.fromRevision !== 'bigint' || options.fromRevision < 0n)) {
    issues.push({ path: 'fromRevision', message: 'must be a bigint >= 0n' });
  }
  maxCountIssue(options.maxCount, issues);
  if (issues.length > 0) throw new ValidationError(issues);
  return { ...options, direction };
};

export const checkReadAll = (options: ReadAllOptions = {}): ReadAllOptions => {
  const issues: FieldIssue[] = [];
  afterIssue(options.after, issues);
  maxCountIssue(options.maxCount, issues);
  const part = options.partition;
  if (part !== undefined) {
    const whole = (n: unknown, below: number): boolean =>
      Number.isInteger(n) && (n as number) >= 0 && (n as number) < below;
    if (typeof part !== 'object' || part === null)
      issues.push({ path: 'partition', message: 'must be { count, index }' });
    else if (!whole(part.count, MAX_PARTITIONS + 1) || part.count < 1)
      issues.push({ path: 'partition.count', message: `must be an integer from 1 to ${MAX_PARTITIONS}` });
    else if (!whole(part.index, part.count))
      issues.push({ path: 'partition.index', message: `must be an integer from 0 to ${part.count - 1}` });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return options;
};

export const checkSubscribe = (
  options: SubscribeOptions = {},
): { after: bigint; streamPrefixes: readonly string[] | undefined; known: SubscribeOptions['known'] } => {
  const issues: FieldIssue[] = [];
  afterIssue(options.after, issues);
  if (options.known !== undefined && typeof options.known !== 'function')
    issues.push({ path: 'known', message: 'must be a function (stream, revision, position) => boolean' });
  const prefixes = options.streamPrefixes;
  if (prefixes !== undefined) {
    if (!Array.isArray(prefixes)) issues.push({ path: 'streamPrefixes', message: 'must be an array of strings' });
    else
      prefixes.forEach((p: unknown, i) => {
        if (typeof p !== 'string' || LONE_SURROGATE.test(p))
          issues.push({ path: `streamPrefixes[${i}]`, message: 'must be a well-formed string' });
      });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  // An empty prefix matches every stream: the filter is then no filter at all.
  const all = prefixes === undefined || prefixes.includes('');
  return { after: options.after ?? 0n, streamPrefixes: all ? undefined : prefixes, known: options.known };
};

const afterIssue = (after: unknown, issues: FieldIssue[]): void => {
  if (after !== undefined && (typeof after !== 'bigint' || after < 0n))
    issues.push({ path: 'after', message: 'must be a bigint >= 0n' });
};

const maxCountIssue = (maxCount: unknown, issues: FieldIssue[]): void => {
  if (maxCount !== undefined && (typeof maxCount !== 'number' || !Number.isSafeInteger(maxCount) || maxCount < 0)) {
    issues.push({ path: 'maxCount', message: 'must be an integer >= 0' });
  }
};

export const matchesPrefixes = (stream: string, prefixes: readonly string[] | undefined): boolean =>
  prefixes === undefined || prefixes.some((p) => stream.startsWith(p));
