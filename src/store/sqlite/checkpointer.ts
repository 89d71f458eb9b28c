import { Worker } from 'node:worker_threads';
import { workerEntry } from '../../threads/workerEntry.js';
import type { CheckpointerInit, CheckpointerReply } from './writerProtocol.js';

/**
 * The main thread's handle on the checkpoint thread (checkpointWorker.ts). It never holds the process
 * open; `problem` says why it stopped, if it did (the writer's backstop checkpoint then keeps the WAL
 * bounded). Like the writer thread, it is asked to close rather than terminated (better-sqlite3 aborts
 * the process when a thread is terminated inside a SQLite call).
 */
export class Checkpointer {
  problem: string | null = null;
  readonly #worker: Worker;
  readonly #exited: Promise<void>;

  constructor(init: CheckpointerInit) {
    const { entry, eval: isCode } = workerEntry(import.meta.url, 'checkpointWorker');
    this.#worker = new Worker(entry, { workerData: init, eval: isCode });
    this.#worker.unref();
    this.#worker.on('message', (reply: CheckpointerReply) => (this.problem = reply.message));
    this.#worker.on('error', (e) => (this.problem = e.message));
    this.#exited = new Promise((resolve) => this.#worker.once('exit', () => resolve()));
  }

  close(): Promise<void> {
    this.#worker.ref();
    this.#worker.postMessage({ kind: 'close' });
    return this.#exited;
  }
}
