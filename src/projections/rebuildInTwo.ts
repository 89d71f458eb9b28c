import type { Clock } from '../clock/clock.js';
import type { EventStore } from '../store/eventStore.js';
import { rebuildApart } from './host/rebuildApart.js';
import type { ModelWriter } from './modelWriter.js';
import { removeDatabaseFiles, type ReadModelDb } from './readModelDb.js';
import type { ReadModelsOptions } from './readModels.js';
import { rebuildModels, type RebuildProgress } from './rebuild.js';

export type RebuildInTwoOptions = {
  store: EventStore;
  db: ReadModelDb;
  clock: Clock;
  /** The second thread's share: the log's URL, the models' options, and which models. */
  apart: { store: string; models: ReadModelsOptions; names: string[] };
  /** The scratch database the second thread builds in (removed at the end). */
  file: string;
  /** Every model rebuilt, the second thread's included. */
  models: string[];
  from: number;
  pageSize: number;
  onProgress: (progress: RebuildProgress) => void;
};

/**
 * A rebuild with the node down, the machine all its own: the models `apart` are rebuilt by a second
 * thread into a scratch database while this one rebuilds the others into their next generation, both
 * up to the log's head as it was at the start; then the second thread's rows are copied in and every
 * model switches over in one transaction. The first failure stops the other thread (between its
 * reads) and is the one reported; nothing switches then.
 */
export const rebuildInTwo = async (options: RebuildInTwoOptions): Promise<RebuildProgress> => {
  const { store, db, clock, file, models, from, pageSize, onProgress } = options;
  const { names: apart, ...thread } = options.apart;
  const started = clock.now();
  const upTo = Number(await store.headPosition());
  const latest: { own?: RebuildProgress; apart?: RebuildProgress } = {};
  const report = () => {
    if (latest.own && latest.apart) onProgress(together(models, latest.own, latest.apart, clock.now() - started));
  };
  let writers: ModelWriter[] = [];
  const failures: unknown[] = [];
  const stopOwn = new AbortController();
  const stopApart = new AbortController();
  const failed =
    (other: AbortController) =>
    (err: unknown): never => {
      failures.push(err);
      other.abort(new Error('stopped: the other thread of the rebuild failed'));
      throw err;
    };
  const [own, second] = await Promise.allSettled([
    rebuildModels({
      store,
      db,
      into: 'next',
      models: models.filter((name) => !apart.includes(name)),
      from,
      upTo,
      pageSize,
      signal: stopOwn.signal,
      clock,
      onProgress: (p) => {
        latest.own = p;
        report();
      },
      finish: (rebuilt) => {
        writers = rebuilt;
      },
    }).catch(failed(stopApart)),
    rebuildApart(
      { ...thread, file, names: apart, from, upTo, pageSize },
      (p) => {
        latest.apart = p;
        report();
      },
      stopApart.signal,
    ).catch(failed(stopOwn)),
  ]);
  let switched = false;
  try {
    // A failed rebuild drops its own generation; the other one's is dropped here.
    if (own.status === 'rejected' || second.status === 'rejected') throw failures[0];
    if (second.value.position !== own.value.position)
      throw new Error(
        `the rebuild's two threads stopped at different log positions (${own.value.position}, ${second.value.position}): nothing switched`,
      );
    db.adopt(file, apart, () => {
      for (const w of writers) db.switchTo(w.model.name, w.generation, w.checkpoint);
      switched = true;
    });
  } catch (err) {
    // Once switched, those generations are the live ones (only the detach after it failed).
    if (!switched) for (const w of writers) db.dropGeneration(w.model.name, w.generation);
    throw err;
  } finally {
    removeDatabaseFiles(file);
  }
  const done: RebuildProgress = {
    ...together(models, own.value, second.value, clock.now() - started),
    phase: 'done',
  };
  onProgress(done);
  return done;
};

/** Two threads' progress as one: as far as both have come. */
const together = (models: string[], a: RebuildProgress, b: RebuildProgress, elapsedMs: number): RebuildProgress => {
  const events = Math.min(a.events, b.events);
  return {
    phase: a.phase === 'reading' || b.phase === 'reading' ? 'reading' : 'finishing',
    models: [...models],
    position: Math.min(a.position, b.position),
    head: Math.max(a.head, b.head),
    events,
    eventsPerSecond: Math.round((events * 1000) / Math.max(1, elapsedMs)),
    elapsedMs,
  };
};
