/**
 * The writer thread's entry point (started by threadWriter.ts, never imported): it owns the store's
 * write connection and runs each group commit (appendToStream.ts: BEGIN IMMEDIATE, the per-append
 * decisions, the savepoint fallback, COMMIT and its fsync) off the main thread. It decides nothing
 * about busy retries: a failed transaction is reported, and the main thread's group commit decides.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { appendWriter } from './appendToStream.js';
import { checkpointOnlyAsBackstop, configure, setBusyTimeout } from './schema.js';
import { prepareStatements } from './statements.js';
import {
  decodeAppends,
  encodeWritten,
  toWireError,
  type WriterInit,
  type WriterReply,
  type WriterRequest,
} from './writerProtocol.js';

const port = parentPort;
if (port === null) throw new Error('writerWorker runs only as a worker thread (see threadWriter.ts)');
const init = workerData as WriterInit;

// The main thread has opened the file and migrated it already; a failure here is an 'error' event there.
const db = new Database(init.file);
configure(db, init);
setBusyTimeout(db, init.busyTimeoutMs);
if (init.checkpointsApart) checkpointOnlyAsBackstop(db);
// The store's clock lives on the main thread (it may be simulated): each request carries its time.
let time = 0;
const write = appendWriter(db, prepareStatements(db), () => time);

const commit = (request: Extract<WriterRequest, { kind: 'commit' }>): void => {
  time = request.time;
  let reply: WriterReply;
  try {
    reply = encodeWritten(request.seq, write(decodeAppends(request.appends)));
  } catch (e) {
    port.postMessage({ kind: 'failed', seq: request.seq, error: toWireError(e) } satisfies WriterReply);
    return;
  }
  port.postMessage(reply, [
    reply.status.buffer,
    reply.revisions.buffer,
    reply.positions.buffer,
    reply.rowPositions.buffer,
  ]);
};

port.on('message', (request: WriterRequest) => {
  if (request.kind === 'commit') return commit(request);
  if (request.kind === 'close') {
    db.close();
    process.exit(0);
  }
  // A protocol bug: die loudly, so the store rejects every append in flight and after it.
  throw new Error(`unknown writer request ${JSON.stringify(request)}`);
});
