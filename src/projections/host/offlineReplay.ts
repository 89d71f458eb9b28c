import type { CompiledConfig } from '../../config/config.js';
import { foldInThread } from '../../threads/foldInThread.js';
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
 * young generation a rebuild needs (`foldInThread`): the CLI's own process keeps V8's defaults, with
 * which every command starts faster.
 */
export const replayOffline = (
  request: OfflineReplayRequest,
  onProgress: (progress: RebuildProgress) => void,
): Promise<ReplayResult> =>
  foldInThread<OfflineReplayMessage, ReplayResult>({
    here: import.meta.url,
    name: 'offlineReplayMain',
    data: request,
    what: "the replay's thread",
    onMessage: (message, answer) => {
      if (message.t === 'progress') onProgress(message.progress);
      else if (message.t === 'done') answer.resolve(message.result);
      else answer.reject(errorOfWire(message.error));
    },
  }).answered;
