import { Worker } from 'node:worker_threads';
import { workerEntry } from '../../threads/workerEntry.js';
import { youngGenerationLimits } from '../../threads/youngGeneration.js';
import type { RebuildProgress } from '../rebuild.js';
import type { ReadModelsOptions } from '../readModels.js';

/** What the second thread of an offline rebuild is asked: which models, from which log, into which file, between which positions. */
export type RebuildApartRequest = {
  /** The log's URL (the thread opens its own connection). */
  store: string;
  /** A scratch read database, created by the thread. */
  file: string;
  models: ReadModelsOptions;
  names: string[];
  from: number;
  upTo: number;
  pageSize: number;
};

/** To the thread: stop (the other thread failed). */
export type RebuildApartStop = { t: 'stop'; reason: string };

export type RebuildApartMessage =
  | { t: 'progress'; progress: RebuildProgress }
  | { t: 'done'; progress: RebuildProgress }
  | { t: 'failed'; message: string };

/**
 * Rebuilds `request.names` in a worker thread (rebuildApartMain.ts) into the scratch database
 * `request.file`, closed when this resolves. The thread is never terminated (better-sqlite3 aborts the
 * process when a thread is terminated during a SQLite call, see threadWriter.ts): `signal` asks it to
 * stop between reads, and it ends by itself.
 */
export const rebuildApart = (
  request: RebuildApartRequest,
  onProgress: (progress: RebuildProgress) => void,
  signal: AbortSignal,
): Promise<RebuildProgress> =>
  new Promise((resolve, reject) => {
    const { entry, eval: isCode } = workerEntry(import.meta.url, 'rebuildApartMain');
    const worker = new Worker(entry, { workerData: request, eval: isCode, resourceLimits: youngGenerationLimits });
    const stop = () => {
      const message: RebuildApartStop = { t: 'stop', reason: String(signal.reason) };
      worker.postMessage(message);
    };
    signal.addEventListener('abort', stop, { once: true });
    let answered = false;
    const answer = (settle: () => void) => {
      if (answered) return;
      answered = true;
      signal.removeEventListener('abort', stop);
      settle();
    };
    worker.on('message', (message: RebuildApartMessage) => {
      if (message.t === 'progress') onProgress(message.progress);
      else if (message.t === 'done') answer(() => resolve(message.progress));
      else answer(() => reject(new Error(`the rebuild's second thread failed: ${message.message}`)));
    });
    worker.on('error', (err) => answer(() => reject(err)));
    worker.on('exit', (code) =>
      answer(() => reject(new Error(`the rebuild's second thread exited (code ${code}) without finishing`))),
    );
  });
