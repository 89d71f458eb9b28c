import { filter, firstValueFrom, timeout } from 'rxjs';
import type { Clock } from '../clock/clock.js';
import type { EventStore } from '../store/eventStore.js';
import type { StreamPartition } from '../store/streamPartition.js';
import { ModelWriter } from './modelWriter.js';
import { decodeLogEvent, READ_MODEL_STREAMS } from './projectedEvent.js';
import type { Projector } from './projector.js';
import type { ReadModelDb } from './readModelDb.js';

export type RebuildProgress = {
  phase: 'reading' | 'finishing' | 'done';
  models: string[];
  /** The log position reached, and the log's head when last asked. */
  position: number;
  head: number;
  /** Events of the read streams applied so far, and the rate since the start. */
  events: number;
  eventsPerSecond: number;
  elapsedMs: number;
};

export type RebuildOptions = {
  store: EventStore;
  /** The database to build in. */
  db: ReadModelDb;
  /** `next`: a new generation beside the live one (switched to in `finish`); `live`: the db's own (a scratch db). */
  into: 'next' | 'live';
  models: readonly string[];
  /** Start after this position (0: the whole log). */
  from?: number;
  /** Only the streams of this part of the log (a rebuild split by stream over threads); default: all. */
  partition?: StreamPartition;
  /**
   * Into `next`: whether the indexes are built once the log is read (default), or left to the caller
   * (a split rebuild joins the other half's rows first).
   */
  buildIndexes?: boolean;
  /** The live models' follower: paused at the end so the rebuild finishes exactly where it stands. */
  projector?: Projector;
  /** Without a follower, where to finish (default: the log's head when the reading is done). */
  upTo?: number;
  clock: Clock;
  /** Events per read and per commit: a row several events change is written once per page. @default 20000 */
  pageSize?: number;
  onProgress?: (progress: RebuildProgress) => void;
  /** Stops the rebuild between reads (it then fails with the signal's reason, its generation dropped). */
  signal?: AbortSignal;
  /**
   * Runs at the end, with the live follower paused and the rebuilt rows committed up to the very
   * position it stands at: compare them (`replay --check`) or switch to them. The follower then
   * resumes with the writers returned in place of its own (a switch), or with its own.
   */
  finish: (writers: ModelWriter[], position: number) => ModelWriter[] | void;
};

const isReadStream = (stream: string): boolean => READ_MODEL_STREAMS.some((prefix) => stream.startsWith(prefix));
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/**
 * Events read at a time. Far fewer than a commit's: what is read is garbage once applied, and a small
 * read dies young (cheap to collect) where 20,000 decoded events at once outlive the young generation.
 */
const READ_SIZE = 1_000;
/** Events between progress reports within a page. */
const PROGRESS_EVERY = 20_000;
/** How long the end of a rebuild waits for a lagging live follower to reach what the rebuild read. */
const CATCH_UP_MS = 60_000;

/**
 * Builds models from the log into a fresh generation, a page at a time with the event loop free in
 * between (the live models go on being served and written meanwhile), then pauses the live follower,
 * reads the last events up to exactly where it stands, and hands both over to `finish` at the same
 * position.
 */
export const rebuildModels = async (options: RebuildOptions): Promise<RebuildProgress> => {
  const { store, db, clock, projector } = options;
  const pageSize = options.pageSize ?? 20_000;
  const started = clock.now();
  const writers = options.models.map((name) => {
    const registered = db.model(name);
    if (!registered) throw new Error(`unknown read model '${name}'`);
    const generation = db.state(name).generation + (options.into === 'next' ? 1 : 0);
    if (options.into === 'next') db.createGeneration(name, generation, { indexes: false });
    return new ModelWriter(db, registered.model, generation, { position: options.from ?? 0, watermark: 0, events: 0 });
  });
  let position = options.from ?? 0;
  /** The last event of a read stream applied: what the live follower must have seen too. */
  let lastApplied = 0;
  let events = 0;
  let head = Number(await store.headPosition());
  const progress = (phase: RebuildProgress['phase']): RebuildProgress => {
    const elapsedMs = Math.max(1, clock.now() - started);
    const rate = Math.round((events * 1000) / elapsedMs);
    // The head read at the start lags a log still being written: never report a position past it.
    return {
      phase,
      models: [...options.models],
      position,
      head: Math.max(head, position),
      events,
      eventsPerSecond: rate,
      elapsedMs,
    };
  };
  const commit = () => ModelWriter.commitAll(db, writers, { keys: false });
  /** Applies the page after `position`, up to `upTo`; true while there may be more to read below `upTo`. */
  const readPage = async (upTo: number): Promise<boolean> => {
    for (let read = 0; read < pageSize; read += READ_SIZE) {
      // Queries, feeds and the live models go on between reads: a page is 20 of them.
      if (read > 0) await nextTurn();
      // A long page (a rebuild with the node down) still says how far it has come.
      if (read > 0 && read % PROGRESS_EVERY === 0) options.onProgress?.(progress('reading'));
      const more = await readSome(upTo);
      if (!more) {
        commit();
        return false;
      }
    }
    commit();
    return true;
  };
  /** Applies up to READ_SIZE events after `position`, up to `upTo`; false when nothing is left below `upTo`. */
  const readSome = async (upTo: number): Promise<boolean> => {
    options.signal?.throwIfAborted();
    const page = await store.readAll({
      after: BigInt(position),
      maxCount: READ_SIZE,
      ...(options.partition ? { partition: options.partition } : {}),
    });
    for (const recorded of page) {
      const at = Number(recorded.position);
      if (at > upTo) return false;
      position = at;
      if (!isReadStream(recorded.stream)) continue;
      lastApplied = at;
      const decoded = decodeLogEvent(recorded);
      if (decoded.ok) events++;
      for (const writer of writers) {
        if (decoded.ok) writer.apply(decoded.event);
        else writer.skipTo(at);
      }
    }
    return page.length === READ_SIZE;
  };

  try {
    while (await readPage(options.upTo ?? Number.MAX_SAFE_INTEGER)) {
      options.onProgress?.(progress('reading'));
      await nextTurn();
    }
    // The indexes queries need, built once over the rows (the tail read below keeps them up). Only
    // writers that go on serving (a live follower's, after the switch) keep the keys they wrote.
    if (options.into === 'next' && options.buildIndexes !== false)
      for (const w of writers) {
        db.createIndexes(w.model.name, w.generation);
        w.indexed(projector !== undefined);
      }
    head = Number(await store.headPosition());
    options.onProgress?.(progress('finishing'));
    let stop = projector ? projector.pause() : Math.min(options.upTo ?? head, head);
    while (projector && lastApplied > stop) {
      // The rebuild read past the live follower: let it catch up, then stop it again.
      projector.resume();
      await firstValueFrom(
        projector.commits$.pipe(
          filter((c) => c.to >= lastApplied),
          timeout(CATCH_UP_MS),
        ),
      );
      stop = projector.pause();
    }
    while (position < stop && (await readPage(stop)));
    for (const writer of writers) writer.skipTo(stop);
    commit();
    position = Math.max(position, stop);
    const replaced = options.finish(writers, position);
    projector?.resume(replaced ?? []);
  } catch (err) {
    projector?.resume();
    if (options.into === 'next') for (const w of writers) db.dropGeneration(w.model.name, w.generation);
    throw err;
  }
  const done = progress('done');
  options.onProgress?.(done);
  return done;
};
