import { parentPort, workerData } from 'node:worker_threads';
import { systemClock } from '../../clock/clock.js';
import { openEventStore } from '../../store/openEventStore.js';
import { ReadModelDb } from '../readModelDb.js';
import { readModels } from '../readModels.js';
import { rebuildModels, type RebuildProgress } from '../rebuild.js';
import type { RebuildApartMessage, RebuildApartRequest, RebuildApartStop } from './rebuildApart.js';

/**
 * The second thread of an offline rebuild (rebuildApart.ts): its own connection to the log, its half
 * of the log (by stream) folded into every model in a scratch database, up to the very position the
 * first thread stops at; the database closed before it answers (the first thread then joins the rows in).
 */
const request = workerData as RebuildApartRequest;
const post = (message: RebuildApartMessage): void => parentPort?.postMessage(message);
const stopped = new AbortController();
parentPort?.on('message', (message: RebuildApartStop) => stopped.abort(new Error(message.reason)));
// Listening for a stop must not keep the thread alive once its work is done.
parentPort?.unref();

const run = async (): Promise<RebuildProgress> => {
  // Never appends: no writer thread for the log.
  const store = await openEventStore(request.store, { sqlite: { writer: 'inline' } });
  try {
    const models = readModels(request.models).filter((m) => request.names.includes(m.model.name));
    // Compared with nothing and queried by nobody: no indexes (the first thread builds its own after the join).
    const db = ReadModelDb.open(request.file, models, { indexes: false });
    try {
      return await rebuildModels({
        store,
        db,
        into: 'live',
        models: request.names,
        from: request.from,
        partition: request.partition,
        upTo: request.upTo,
        pageSize: request.pageSize,
        signal: stopped.signal,
        clock: systemClock,
        onProgress: (progress) => post({ t: 'progress', progress }),
        finish: () => undefined,
      });
    } finally {
      db.close();
    }
  } finally {
    await store.close();
  }
};

run().then(
  (progress) => post({ t: 'done', progress }),
  (err: unknown) => post({ t: 'failed', message: err instanceof Error ? err.message : String(err) }),
);
