import type { Clock } from '../clock/clock.js';
import type { EventStore } from '../store/eventStore.js';
import { rebuildApart } from './host/rebuildApart.js';
import { indexJoined, joinHalf } from './joinHalf.js';
import { ModelWriter } from './modelWriter.js';
import { removeDatabaseFiles, type ReadModelDb } from './readModelDb.js';
import type { ReadModelsOptions } from './readModels.js';
import { rebuildModels, type RebuildProgress } from './rebuild.js';

export type RebuildInTwoOptions = {
  store: EventStore;
  db: ReadModelDb;
  clock: Clock;
  /** The second thread: the log's URL (it opens its own connection) and the models' options. */
  apart: { store: string; models: ReadModelsOptions };
  /** The scratch database the second thread builds in (removed at the end). */
  file: string;
  /** The models rebuilt, by both threads. */
  models: string[];
  from: number;
  pageSize: number;
  onProgress: (progress: RebuildProgress) => void;
};

/** The halves of the log the two threads read: every stream in exactly one. */
const HALVES = 2;

/**
 * A rebuild with the node down, the machine all its own: the log split in two by stream, each thread
 * reading and folding only its half's events into every model — this one into the models' next
 * generation, the second into a scratch database — both up to the log's head as it was at the
 * start; then the second half's rows are joined in (`joinHalf`: merged where a table gathers several
 * streams), the indexes built, and every model switches over in one transaction; the switched writers
 * are returned with the progress. The first failure stops the other thread (between its reads) and
 * is the one reported; nothing switches then.
 */
export const rebuildInTwo = async (
  options: RebuildInTwoOptions,
): Promise<{ progress: RebuildProgress; writers: ModelWriter[] }> => {
  const { store, db, clock, file, models, from, pageSize, onProgress } = options;
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
      models,
      partition: { count: HALVES, index: 0 },
      buildIndexes: false,
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
      { ...options.apart, file, names: models, partition: { count: HALVES, index: 1 }, from, upTo, pageSize },
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
    joinHalf(db, file, writers);
    ModelWriter.commitAll(db, writers, { keys: false });
    indexJoined(db, writers);
    db.transaction(() => {
      for (const w of writers) db.switchTo(w.model.name, w.generation, w.checkpoint);
    });
    switched = true;
  } catch (err) {
    // Once switched, those generations are the live ones.
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
  return { progress: done, writers };
};

/** Two halves' progress as one: the events of both, as far as both have come. */
const together = (models: string[], a: RebuildProgress, b: RebuildProgress, elapsedMs: number): RebuildProgress => {
  const events = a.events + b.events;
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
