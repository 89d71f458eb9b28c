import { KairosError, type ErrorCode, type ErrorDetails } from '../../../domain/errors/index.js';
import type { PreparedAppend, PreparedEvent } from '../appendRules.js';
import {
  DuplicateEventIdError,
  WrongExpectedVersionError,
  type AppendResult,
  type ExpectedRevision,
} from '../eventStore.js';
import type { Written } from './appendToStream.js';
import type { Outcome } from './groupCommit.js';
import type { ConnectionSettings, Synchronous } from './schema.js';
import type { EventRow } from './statements.js';

/**
 * The messages between the store (main thread) and its writer thread (writerWorker.ts). They are
 * shaped for the cost of structured clone, which the main thread pays on every post and receipt:
 * appends travel as one flat array of strings (data and metadata already JSON text), measured at
 * about half the cost of cloning the PreparedAppend objects; results travel as typed arrays (copied
 * as raw bytes) plus plain objects for the rare failures. Error objects never cross: the main thread
 * rebuilds them, so `instanceof` and the guards keep working.
 */

/** What the writer thread needs to open its own connection to the file. */
export type WriterInit = {
  file: string;
  synchronous: Synchronous;
  busyTimeoutMs: number;
  /** The checkpoint thread copies the WAL: the writer's own automatic checkpoint is only a backstop. */
  checkpointsApart: boolean;
};

export type CheckpointerInit = ConnectionSettings & { file: string; intervalMs: number };
/** The checkpoint thread met an error other than busy and stopped; the writer's backstop takes over. */
export type CheckpointerReply = { kind: 'stopped'; message: string };

/** Per append: `stream, expectedRevision, truncateBefore (or null), eventCount`, then per event `id, type, data, metadata`. */
export type EncodedAppends = (string | number | bigint | null)[];

export type WriterRequest = { kind: 'commit'; seq: number; time: number; appends: EncodedAppends } | { kind: 'close' };

export const Status = { written: 0, done: 1, failed: 2 } as const;

/** Why one append failed, as plain data. */
export type WireFailure =
  | { kind: 'wrongVersion'; stream: string; expected: ExpectedRevision; actual: bigint | undefined }
  | { kind: 'duplicate'; stream: string; ids: string[] }
  | {
      kind: 'other';
      code: ErrorCode | undefined;
      message: string;
      details: ErrorDetails | undefined;
      cause?: WireError;
    };

/** An error of the whole transaction (busy, I/O): message and SQLite code, enough for the retry decision. */
export type WireError = { message: string; code: string | undefined };

export type WriterReply =
  | {
      kind: 'committed';
      seq: number;
      before: bigint;
      /** Per append, a `Status`. */
      status: Uint8Array<ArrayBuffer>;
      /** Per append that succeeded (written or done): its result; 0n otherwise. */
      revisions: BigInt64Array<ArrayBuffer>;
      positions: BigInt64Array<ArrayBuffer>;
      /** The position of every inserted event, in insertion order. */
      rowPositions: BigInt64Array<ArrayBuffer>;
      /** Per failed append, in order. */
      failures: WireFailure[];
    }
  | { kind: 'failed'; seq: number; error: WireError };

export const encodeAppends = (appends: readonly PreparedAppend[]): EncodedAppends => {
  const flat: EncodedAppends = [];
  for (const a of appends) {
    flat.push(a.stream, a.expectedRevision, a.truncateBefore ?? null, a.events.length);
    for (const e of a.events) flat.push(e.id, e.type, e.data, e.metadata);
  }
  return flat;
};

export const decodeAppends = (flat: EncodedAppends): PreparedAppend[] => {
  const appends: PreparedAppend[] = [];
  let at = 0;
  while (at < flat.length) {
    const stream = flat[at++] as string;
    const expectedRevision = flat[at++] as ExpectedRevision;
    const truncateBefore = flat[at++] as bigint | null;
    const count = flat[at++] as number;
    const events: PreparedEvent[] = new Array<PreparedEvent>(count);
    for (let i = 0; i < count; i++) {
      events[i] = {
        id: flat[at] as string,
        type: flat[at + 1] as string,
        data: flat[at + 2] as string,
        metadata: flat[at + 3] as string | null,
      };
      at += 4;
    }
    appends.push({ stream, events, expectedRevision, ...(truncateBefore === null ? {} : { truncateBefore }) });
  }
  return appends;
};

export const toWireError = (e: unknown): WireError => {
  const code = (e as { code?: unknown } | null)?.code;
  return { message: e instanceof Error ? e.message : String(e), code: typeof code === 'string' ? code : undefined };
};

/** An Error carrying the SQLite code, so `isBusy` and the group commit treat it as the original. */
export const fromWireError = (wire: WireError): Error =>
  Object.assign(new Error(wire.message), wire.code === undefined ? {} : { code: wire.code });

const toWireFailure = (error: Error): WireFailure => {
  if (error instanceof WrongExpectedVersionError)
    return { kind: 'wrongVersion', stream: error.stream, expected: error.expected, actual: error.actual };
  if (error instanceof DuplicateEventIdError) {
    const details = error.details as { stream: string; ids: string[] };
    return { kind: 'duplicate', stream: details.stream, ids: details.ids };
  }
  const cause = (error as { cause?: unknown }).cause;
  return {
    kind: 'other',
    code: error instanceof KairosError ? error.code : undefined,
    message: error.message,
    details: error instanceof KairosError ? error.details : undefined,
    ...(cause === undefined ? {} : { cause: toWireError(cause) }),
  };
};

const fromWireFailure = (wire: WireFailure): Error => {
  switch (wire.kind) {
    case 'wrongVersion':
      return new WrongExpectedVersionError(wire.stream, wire.expected, wire.actual);
    case 'duplicate':
      return new DuplicateEventIdError(wire.stream, wire.ids);
    case 'other': {
      const options = wire.cause === undefined ? undefined : { cause: fromWireError(wire.cause) };
      return wire.code === undefined
        ? new Error(wire.message, options)
        : new KairosError(wire.code, wire.message, wire.details, options);
    }
  }
};

/** The worker's side: one transaction's results as a reply. */
export const encodeWritten = (seq: number, written: Written): Extract<WriterReply, { kind: 'committed' }> => {
  const n = written.outcomes.length;
  const status = new Uint8Array(n);
  const revisions = new BigInt64Array(n);
  const positions = new BigInt64Array(n);
  const failures: WireFailure[] = [];
  written.outcomes.forEach((outcome, i) => {
    if (outcome instanceof Error) {
      status[i] = Status.failed;
      failures.push(toWireFailure(outcome));
      return;
    }
    status[i] = written.written[i] === true ? Status.written : Status.done;
    revisions[i] = outcome.nextExpectedRevision;
    positions[i] = outcome.position;
  });
  const rowPositions = BigInt64Array.from(written.rows, (r) => r.position);
  return { kind: 'committed', seq, before: written.before, status, revisions, positions, rowPositions, failures };
};

/**
 * The main thread's side: the outcomes of a reply, and the rows it inserted, rebuilt from the appends
 * that were sent (so event data never travels back).
 */
export const decodeWritten = (
  reply: Extract<WriterReply, { kind: 'committed' }>,
  appends: readonly PreparedAppend[],
  time: number,
): Written => {
  const outcomes: Outcome[] = new Array<Outcome>(appends.length);
  const written: boolean[] = new Array<boolean>(appends.length);
  const rows: EventRow[] = [];
  const bigTime = BigInt(time);
  let failure = 0;
  let row = 0;
  appends.forEach((append, i) => {
    const status = reply.status[i];
    written[i] = status === Status.written;
    if (status === Status.failed) {
      outcomes[i] = fromWireFailure(reply.failures[failure++] as WireFailure);
      return;
    }
    const result: AppendResult = {
      nextExpectedRevision: reply.revisions[i] as bigint,
      position: reply.positions[i] as bigint,
    };
    outcomes[i] = result;
    if (status !== Status.written) return;
    let revision = result.nextExpectedRevision - BigInt(append.events.length) + 1n;
    for (const e of append.events) {
      rows.push({
        position: reply.rowPositions[row++] as bigint,
        id: e.id,
        stream: append.stream,
        revision: revision++,
        type: e.type,
        data: e.data,
        metadata: e.metadata,
        time: bigTime,
      });
    }
  });
  return { outcomes, before: reply.before, rows, written };
};
