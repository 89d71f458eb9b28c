/**
 * The checkpoint thread's entry point (started by threadWriter.ts, never imported): on a connection
 * of its own it copies the WAL's committed pages into the database file every `intervalMs` (a
 * PASSIVE checkpoint waits for no reader and no writer). Inside a commit, SQLite's automatic
 * checkpoint of ~40 MB of WAL held the writer for up to ~200 ms at 20,000 appends/s, and every fire
 * queued behind it; here, the writer only appends to the WAL. The writer connection keeps a far
 * larger automatic checkpoint as a backstop should this thread stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { isBusy } from './groupCommit.js';
import { configure } from './schema.js';
import type { CheckpointerInit, CheckpointerReply } from './writerProtocol.js';

const port = parentPort;
if (port === null) throw new Error('checkpointWorker runs only as a worker thread (see threadWriter.ts)');
const init = workerData as CheckpointerInit;

const db = new Database(init.file);
configure(db, init);
// A checkpoint already under way (another process's, the writer's backstop) is not waited for.
db.pragma('busy_timeout = 0');
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (e) {
    if (isBusy(e)) return;
    clearInterval(timer);
    port.postMessage({ kind: 'stopped', message: (e as Error).message } satisfies CheckpointerReply);
  }
}, init.intervalMs);

port.on('message', (request: { kind: string }) => {
  if (request.kind !== 'close') throw new Error(`unknown checkpointer request ${JSON.stringify(request)}`);
  clearInterval(timer);
  db.close();
  process.exit(0);
});
