import { Worker } from 'node:worker_threads';
import { ErrorCode, KairosError } from '../../../domain/errors/index.js';
import { workerEntry } from '../../threads/workerEntry.js';
import type { PreparedAppend } from '../appendRules.js';
import type { Written } from './appendToStream.js';
import {
  decodeWritten,
  encodeAppends,
  fromWireError,
  type WriterInit,
  type WriterReply,
  type WriterRequest,
} from './writerProtocol.js';

type Pending = {
  appends: readonly PreparedAppend[];
  time: number;
  resolve: (written: Written) => void;
  reject: (error: Error) => void;
};

/**
 * The main thread's handle on the writer thread (writerWorker.ts): it posts one group commit at a time
 * and resolves it with what the transaction did, rebuilt as on the inline path (errors as the real
 * classes, rows for the live subscribers). If the thread dies, every commit in flight and every later
 * one rejects with an `unavailable` error: nothing waits for an answer that cannot come.
 *
 * The thread is never terminate()d: better-sqlite3 aborts the whole process (V8 fatal error) when a
 * thread is terminated while a SQLite call of it fails, e.g. with SQLITE_BUSY (measured). It is asked to
 * close and exits by itself, between transactions.
 *
 * The thread is unref'd while idle, so an open store does not keep the process alive (as the inline
 * path does not), and ref'd while a commit or the close is in flight, so the process does not exit
 * with an await pending on it.
 */
export class ThreadWriter {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private readonly exited: Promise<void>;
  private seq = 0;
  private closing = false;
  private failure: KairosError | undefined;

  constructor(init: WriterInit) {
    const { entry, eval: isCode } = workerEntry(import.meta.url, 'writerWorker');
    this.worker = new Worker(entry, { workerData: init, eval: isCode });
    this.worker.unref();
    this.worker.on('message', (reply: WriterReply) => this.onReply(reply));
    this.worker.on('error', (e) => this.fail(`failed: ${e.message}`, e));
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', (code) => {
        if (!this.closing || this.pending.size > 0) this.fail(`exited unexpectedly (exit code ${code})`);
        this.failure ??= new KairosError(ErrorCode.unavailable, "the event store's writer thread is closed");
        resolve();
      }),
    );
  }

  /** Runs one group commit in the writer thread; rejects with the transaction's error (busy included). */
  write(appends: readonly PreparedAppend[], time: number): Promise<Written> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const seq = ++this.seq;
    return new Promise<Written>((resolve, reject) => {
      this.pending.set(seq, { appends, time, resolve, reject });
      this.worker.ref();
      const request: WriterRequest = { kind: 'commit', seq, time, appends: encodeAppends(appends) };
      this.worker.postMessage(request);
    });
  }

  /** Closes the write connection and stops the thread; call it with no commit in flight. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.worker.ref();
      this.worker.postMessage({ kind: 'close' } satisfies WriterRequest);
    }
    return this.exited;
  }

  private onReply(reply: WriterReply): void {
    const pending = this.pending.get(reply.seq);
    if (pending === undefined) return;
    this.pending.delete(reply.seq);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.kind === 'failed') pending.reject(fromWireError(reply.error));
    else pending.resolve(decodeWritten(reply, pending.appends, pending.time));
  }

  private fail(what: string, cause?: unknown): void {
    this.failure ??= new KairosError(
      ErrorCode.unavailable,
      `the event store's writer thread ${what}; appends in flight may or may not have been committed, and no more are accepted until the store is reopened`,
      undefined,
      cause === undefined ? undefined : { cause },
    );
    const failure = this.failure;
    for (const pending of this.pending.values()) pending.reject(failure);
    this.pending.clear();
    this.worker.unref();
  }
}
