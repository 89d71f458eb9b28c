import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { IllegalStateError, ValidationError } from '../../domain/errors/index.js';
import type { Clock } from '../clock/clock.js';
import type { EventStore } from '../store/eventStore.js';
import { compareModels, type ComparisonReport } from './compareModels.js';
import { LiveFeeds, type FeedFilter, type FeedSink } from './liveFeed.js';
import { ModelWriter } from './modelWriter.js';
import { Projector } from './projector.js';
import { queries, type QueryArgs, type QueryName, type QueryResult } from './queries/index.js';
import { ReadModelDb, removeDatabaseFiles, type RegisteredModel } from './readModelDb.js';
import type { ReadModelsOptions } from './readModels.js';
import { rebuildModels, type RebuildProgress } from './rebuild.js';
import { rebuildInTwo } from './rebuildInTwo.js';

export type ReplayArgs = { models?: string[]; from?: number; check?: boolean };
export type ReplayResult = { progress: RebuildProgress; comparison: ComparisonReport | null };

export type ReadSideOptions = {
  store: EventStore;
  /** The read database file, or `:memory:`. */
  file: string;
  models: readonly RegisteredModel[];
  clock: Clock;
  logger: Logger;
  sink: FeedSink;
  /**
   * With the node down (not following the log), a rebuild gives half of the log's streams to a second
   * thread, which opens the log at this URL and the models with these options.
   */
  apart?: { store: string; models: ReadModelsOptions };
};

/**
 * Events per commit of a rebuild with the node down. Nobody is served meanwhile, so commits can be
 * rare: a row many events change (a task's board row, an hour's statistics) is written once per
 * 250,000 events rather than once per 20,000 — 18 % less time on a 1,000,000-event log, for ~800 MB of
 * memory at the peak instead of ~450 MB.
 */
const OFFLINE_PAGE_EVENTS = 250_000;

/** What scratch databases beside the read database are for (`read.db.check-<time>`). */
const SCRATCH_PURPOSES = ['check', 'rebuild'] as const;

/** How long a query that asks for a position waits for the models to reach it. */
const CONSISTENCY_WAIT_MS = 5_000;

/**
 * The read side of one node (design §6), wherever it runs (a child process of the node, or in-process
 * for an in-memory log): the read database, the live models following the log, the queries, the live
 * feeds and the replay jobs. One replay at a time.
 */
export class ReadSide {
  readonly db: ReadModelDb;
  readonly projector: Projector;
  readonly feeds: LiveFeeds;
  readonly #options: ReadSideOptions;
  #replay: RebuildProgress | null = null;
  /** Whether the live models follow the log (a node); not when `kairos replay` runs with the node down. */
  #following = false;

  private constructor(options: ReadSideOptions, db: ReadModelDb) {
    this.#options = options;
    this.db = db;
    const writers = db.models.map(({ model }) => {
      const state = db.state(model.name);
      return new ModelWriter(db, model, state.generation, state);
    });
    this.projector = new Projector({ store: options.store, db, writers, logger: options.logger });
    this.feeds = new LiveFeeds({
      store: options.store,
      db,
      projector: this.projector,
      sink: options.sink,
      logger: options.logger,
    });
  }

  /**
   * Opens the read database, holding it exclusively (another process's read side is refused), and
   * removes the scratch databases of checks and rebuilds that did not end (the process was killed):
   * only the holder of the read database makes them.
   */
  static open(options: ReadSideOptions): ReadSide {
    const db = ReadModelDb.open(options.file, options.models, { exclusive: true });
    if (options.file !== ':memory:') {
      const prefixes = SCRATCH_PURPOSES.map((purpose) => `${basename(options.file)}.${purpose}-`);
      for (const name of readdirSync(dirname(options.file)))
        if (prefixes.some((prefix) => name.startsWith(prefix)))
          rmSync(join(dirname(options.file), name), { force: true });
    }
    return new ReadSide(options, db);
  }

  /** Follows the log with the live models. */
  start(): void {
    this.#following = true;
    this.projector.start();
  }

  /** Runs a query, after the live models have reached `minPosition` (read-your-writes), waiting up to 5 s. */
  async query<N extends QueryName>(name: N, args: QueryArgs<N>, minPosition = 0): Promise<QueryResult<N>> {
    const handler = queries[name] as unknown as ((ctx: unknown, args: unknown) => QueryResult<N>) | undefined;
    if (!handler) throw new ValidationError([{ path: 'query', message: `unknown query '${String(name)}'` }]);
    await this.caughtUpTo(minPosition);
    return handler({ db: this.db, store: this.#options.store, clock: this.#options.clock, readSide: this }, args);
  }

  /** Resolves once the live models include `position`, or after `ms` (then they stay behind: a restart catches up). */
  async caughtUpTo(position: number, ms = CONSISTENCY_WAIT_MS): Promise<void> {
    if (!this.#following || this.projector.position >= position) return;
    await firstValueFrom(
      this.projector.commits$.pipe(
        filter((c) => c.to >= position),
        timeout({ first: ms, with: () => [null] }),
      ),
      { defaultValue: null },
    );
  }

  openFeed(id: number, after: number, filter: FeedFilter, windowBytes: number): void {
    this.feeds.open(id, after, filter, windowBytes);
  }

  closeFeed(id: number): void {
    this.feeds.close(id);
  }

  /** `bytes` of a feed's messages have left the node (flow control). */
  ackFeed(id: number, bytes: number): void {
    this.feeds.ack(id, bytes);
  }

  get replayProgress(): RebuildProgress | null {
    return this.#replay;
  }

  /**
   * Rebuilds models from the log while the live ones go on serving: into a new generation that then
   * replaces the live one, or (`check`) into a scratch database compared row for row with the live one.
   */
  async replay(args: ReplayArgs, onProgress?: (progress: RebuildProgress) => void): Promise<ReplayResult> {
    if (this.#replay) throw new IllegalStateError('a replay is already running', { replay: this.#replay });
    const names = args.models && args.models.length > 0 ? args.models : this.db.models.map((m) => m.model.name);
    const unknown = names.filter((n) => !this.db.model(n));
    if (unknown.length > 0)
      throw new ValidationError([{ path: 'models', message: `unknown read model(s): ${unknown.join(', ')}` }]);
    const report = (progress: RebuildProgress) => {
      this.#replay = progress;
      onProgress?.(progress);
    };
    // Taken before the first await: a second replay asked meanwhile is refused.
    this.#replay = {
      phase: 'reading',
      models: names,
      position: args.from ?? 0,
      head: 0,
      events: 0,
      eventsPerSecond: 0,
      elapsedMs: 0,
    };
    try {
      const head = Number(await this.#options.store.headPosition());
      if ((args.from ?? 0) > head)
        throw new ValidationError([{ path: 'from', message: `must be at most the log's head position (${head})` }]);
      return args.check ? await this.#check(names, report) : await this.#rebuild(names, args.from ?? 0, report);
    } finally {
      this.#replay = null;
    }
  }

  /** Events per commit of a rebuild: fewer commits when nobody is served meanwhile. */
  get #pageSize(): number | undefined {
    return this.#following ? undefined : OFFLINE_PAGE_EVENTS;
  }

  /** A scratch read database beside the live one. */
  #scratchFile(purpose: (typeof SCRATCH_PURPOSES)[number]): string {
    const base = this.#options.file === ':memory:' ? join(tmpdir(), `kairos-read-${process.pid}`) : this.#options.file;
    return `${base}.${purpose}-${this.#options.clock.now()}`;
  }

  async #rebuild(models: string[], from: number, onProgress: (p: RebuildProgress) => void): Promise<ReplayResult> {
    // With the node down, a second thread folds half of the log's streams (docs/architecture.md).
    if (this.#options.apart && !this.#following) {
      const { progress, writers } = await rebuildInTwo({
        store: this.#options.store,
        db: this.db,
        clock: this.#options.clock,
        apart: this.#options.apart,
        file: this.#scratchFile('rebuild'),
        models,
        from,
        pageSize: OFFLINE_PAGE_EVENTS,
        onProgress,
      });
      this.projector.adopt(writers);
      return { progress, comparison: null };
    }
    const progress = await rebuildModels({
      store: this.#options.store,
      db: this.db,
      into: 'next',
      models,
      from,
      ...(this.#following ? { projector: this.projector } : {}),
      pageSize: this.#pageSize,
      clock: this.#options.clock,
      onProgress,
      finish: (writers) => {
        this.db.transaction(() => {
          for (const w of writers) this.db.switchTo(w.model.name, w.generation, w.checkpoint);
        });
        // Following, the projector resumes with them; not, it stands where they stand.
        if (!this.#following) this.projector.adopt(writers);
        return writers;
      },
    });
    return { progress, comparison: null };
  }

  async #check(models: string[], onProgress: (p: RebuildProgress) => void): Promise<ReplayResult> {
    const file = this.#scratchFile('check');
    // Compared row for row, never queried: no secondary indexes to keep up.
    const scratch = ReadModelDb.open(
      file,
      this.db.models.filter((m) => models.includes(m.model.name)),
      { indexes: false },
    );
    let comparison: ComparisonReport | null = null;
    try {
      const progress = await rebuildModels({
        store: this.#options.store,
        db: scratch,
        into: 'live',
        models,
        // Not following, the live models stand at their checkpoint: the rebuild stops there too.
        ...(this.#following ? { projector: this.projector } : { upTo: this.projector.position }),
        pageSize: this.#pageSize,
        clock: this.#options.clock,
        onProgress,
        finish: (_writers, position) => {
          comparison = compareModels(this.db, { file, db: scratch }, models, position);
        },
      });
      return { progress, comparison };
    } finally {
      scratch.close();
      removeDatabaseFiles(file);
    }
  }

  close(reason = 'the read side is closing'): void {
    this.feeds.closeAll(reason);
    this.projector.close();
    this.db.close();
  }
}
