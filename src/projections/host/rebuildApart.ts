import { foldInThread } from '../../threads/foldInThread.js';
import type { StreamPartition } from '../../store/streamPartition.js';
import type { RebuildProgress } from '../rebuild.js';
import type { ReadModelsOptions } from '../readModels.js';

/** What the second thread of an offline rebuild is asked: which models, from which log and which half of it, into which file, between which positions. */
export type RebuildApartRequest = {
  /** The log's URL (the thread opens its own connection). */
  store: string;
  /** A scratch read database, created by the thread. */
  file: string;
  models: ReadModelsOptions;
  names: string[];
  /** The half of the log (by stream) it reads. */
  partition: StreamPartition;
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
 * Rebuilds `request.names` from `request.partition` of the log in a worker thread (rebuildApartMain.ts) into the scratch database
 * `request.file`, closed when this resolves. `signal` asks the thread to stop between reads (it is
 * never terminated, see `foldInThread`).
 */
export const rebuildApart = (
  request: RebuildApartRequest,
  onProgress: (progress: RebuildProgress) => void,
  signal: AbortSignal,
): Promise<RebuildProgress> => {
  const { worker, answered } = foldInThread<RebuildApartMessage, RebuildProgress>({
    here: import.meta.url,
    name: 'rebuildApartMain',
    data: request,
    what: "the rebuild's second thread",
    onMessage: (message, answer) => {
      if (message.t === 'progress') onProgress(message.progress);
      else if (message.t === 'done') answer.resolve(message.progress);
      else answer.reject(new Error(`the rebuild's second thread failed: ${message.message}`));
    },
  });
  const stop = () => worker.postMessage({ t: 'stop', reason: String(signal.reason) } satisfies RebuildApartStop);
  signal.addEventListener('abort', stop, { once: true });
  const off = () => signal.removeEventListener('abort', stop);
  answered.then(off, off);
  return answered;
};
