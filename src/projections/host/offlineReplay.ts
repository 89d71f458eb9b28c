import { Worker } from 'node:worker_threads';
import type { CompiledConfig } from '../../config/config.js';
import { workerEntry } from '../../threads/workerEntry.js';
import { youngGenerationLimits } from '../../threads/youngGeneration.js';
import type { RebuildProgress } from '../rebuild.js';
import type { ReplayArgs, ReplayResult } from '../readSide.js';
import { errorOfWire, type WireError } from './protocol.js';

/** What `kairos replay` with the node down asks its thread: the log, the read database's settings, the replay. */
export type OfflineReplayRequest = {
  /** The log's URL (the thread opens its own connection). */
  url: string;
  settings: NonNullable<CompiledConfig['readSide']>;
  args: ReplayArgs;
};

export type OfflineReplayMessage =
  | { t: 'progress'; progress: RebuildProgress }
  | { t: 'done'; result: ReplayResult }
  | { t: 'failed'; error: WireError };

/**
 * Runs a replay of a log no node is running on (offlineReplayMain.ts) in a worker thread with the
 * young generation a rebuild needs (src/threads/youngGeneration.ts): the CLI's own process keeps V8's
 * defaults, with which every command starts faster. The thread ends by itself once it has answered.
 */
export const replayOffline = (
  request: OfflineReplayRequest,
  onProgress: (progress: RebuildProgress) => void,
): Promise<ReplayResult> =>
  new Promise((resolve, reject) => {
    const { entry, eval: isCode } = workerEntry(import.meta.url, 'offlineReplayMain');
    const worker = new Worker(entry, { workerData: request, eval: isCode, resourceLimits: youngGenerationLimits });
    let answered = false;
    const answer = (settle: () => void) => {
      if (answered) return;
      answered = true;
      settle();
    };
    worker.on('message', (message: OfflineReplayMessage) => {
      if (message.t === 'progress') onProgress(message.progress);
      else if (message.t === 'done') answer(() => resolve(message.result));
      else answer(() => reject(errorOfWire(message.error)));
    });
    worker.on('error', (err) => answer(() => reject(err)));
    worker.on('exit', (code) =>
      answer(() => reject(new Error(`the replay's thread exited (code ${code}) without an answer`))),
    );
  });
