import { parentPort, workerData } from 'node:worker_threads';
import { openEventStore } from '../../store/openEventStore.js';
import type { ReplayResult } from '../readSide.js';
import type { OfflineReplayMessage, OfflineReplayRequest } from './offlineReplay.js';
import { openOfflineReadSide } from './openReadSide.js';
import { wireErrorOf } from './protocol.js';

/** The thread of `kairos replay` with the node down (offlineReplay.ts): opens the log and the read database, replays, answers. */
const request = workerData as OfflineReplayRequest;
const post = (message: OfflineReplayMessage): void => parentPort?.postMessage(message);

const run = async (): Promise<ReplayResult> => {
  // Never appends: no writer thread for the log.
  const store = await openEventStore(request.url, { sqlite: { writer: 'inline' } });
  try {
    const readSide = openOfflineReadSide(store, request.url, request.settings);
    try {
      // Not following the log: a rebuild reads it to its head; a check compares at the models' checkpoint.
      return await readSide.replay(request.args, (progress) => post({ t: 'progress', progress }));
    } finally {
      readSide.close('the replay is over');
    }
  } finally {
    await store.close();
  }
};

run().then(
  (result) => post({ t: 'done', result }),
  (err: unknown) => post({ t: 'failed', error: wireErrorOf(err) }),
);
