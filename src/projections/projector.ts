import type { Logger } from 'pino';
import { Subject, map, type Subscription } from 'rxjs';
import type { ProjectedEvent } from '../../domain/projections/readModel.js';
import type { EventStore } from '../store/eventStore.js';
import { ModelWriter, type ModelChanges } from './modelWriter.js';
import { decodeLogEvent, READ_MODEL_STREAMS, type DecodedLogEvent } from './projectedEvent.js';
import type { ReadModelDb } from './readModelDb.js';

/** What one commit of the live models did: the events it covered (in order) and the rows they changed. */
export type Commit = { from: number; to: number; events: ProjectedEvent[]; changes: ModelChanges[] };

/**
 * Events applied before a commit is forced (a long catch-up commits at least this often). A commit
 * holds the read side's thread, so queries wait for it. At 20,000, the worst of 100 queries asked
 * during a catch-up on a 5,000,000-event log waited 769 ms; at 5,000, 477 ms (and the longest block
 * on a 202,000-event log fell from ~280 to ~150 ms), for ~12 % less catch-up speed (30,600 vs 34,700
 * events/s there).
 */
const MAX_BATCH = 5_000;
/**
 * The cap while the node is busy (`nodeBusy`): the read side then takes only the CPU the node leaves
 * and lags anyway, queries wait for that CPU more than for a commit, and every row and B-tree page a
 * commit touches is written once per commit — the board, statistics and fire-index rows are keyed by
 * task, so a commit of 5,000 events rewrote most of their pages. Measured at 10,000 fires/s on two
 * vCPUs (docs/benchmarks.md, "Capacity"): ~60 µs of the read side's CPU per event at 5,000, ~44 µs at
 * 20,000, and its read-database writes 5.2 → 2.6 KB per event.
 */
const MAX_BATCH_BUSY = 20_000;
const RETRY_MS = 1_000;

/**
 * Keeps the live read models following the log (design §6): `subscribeToAll` from the oldest
 * checkpoint → decode → every model's reducer → one transaction per batch writing all their rows and
 * checkpoints together. A batch ends when the store stops delivering (the commits seen by one poll),
 * so a commit lands right after the events it covers, and a long catch-up commits every `MAX_BATCH`
 * events. Each model skips what its checkpoint already includes, so a restart, a
 * model added later, or a renewed subscription never counts an event twice.
 */
export class Projector {
  readonly commits$ = new Subject<Commit>();
  readonly #store: EventStore;
  readonly #db: ReadModelDb;
  readonly #log: Logger;
  readonly #writers = new Map<string, ModelWriter>();
  #subscription: Subscription | null = null;
  #batch: ProjectedEvent[] = [];
  #committed: number;
  #applied: number;
  #scheduled: NodeJS.Immediate | null = null;
  /** Events delivered since the last look at whether the store is still delivering. */
  #arrived = 0;
  #retry: NodeJS.Timeout | null = null;
  #undecodable = 0;
  #paused = false;
  #closed = false;
  #maxBatch = MAX_BATCH;

  constructor(options: { store: EventStore; db: ReadModelDb; writers: readonly ModelWriter[]; logger: Logger }) {
    this.#store = options.store;
    this.#db = options.db;
    this.#log = options.logger;
    for (const writer of options.writers) this.#writers.set(writer.model.name, writer);
    this.#committed = this.#applied = Math.min(...options.writers.map((w) => w.position));
  }

  /** Every live model includes the log up to here. */
  get position(): number {
    return this.#committed;
  }

  /** Events that could not be decoded so far (each is logged once). */
  get undecodable(): number {
    return this.#undecodable;
  }

  writer(model: string): ModelWriter | undefined {
    return this.#writers.get(model);
  }

  /** While the node is busy, commits gather more events (`MAX_BATCH_BUSY`); a calm node's queries wait less. */
  nodeBusy(busy: boolean): void {
    this.#maxBatch = busy ? MAX_BATCH_BUSY : MAX_BATCH;
  }

  start(): void {
    if (this.#closed || this.#paused || this.#subscription) return;
    const after = Math.min(...[...this.#writers.values()].map((w) => w.appliedPosition));
    this.#applied = after;
    this.#subscription = this.#store
      .subscribeToAll({ after: BigInt(after), streamPrefixes: READ_MODEL_STREAMS })
      .pipe(map(decodeLogEvent))
      .subscribe({
        next: (decoded) => this.#onEvent(decoded),
        error: (err: unknown) => this.#failed(err, 'the log subscription failed'),
      });
  }

  #onEvent(decoded: DecodedLogEvent): void {
    const position = decoded.ok ? decoded.event.position : decoded.position;
    if (position <= this.#applied) return;
    this.#applied = position;
    if (decoded.ok) {
      for (const writer of this.#writers.values()) writer.apply(decoded.event);
      this.#batch.push(decoded.event);
    } else {
      this.#undecodable++;
      this.#log.error({ position, problem: decoded.error }, 'read models skip an event they cannot decode');
      for (const writer of this.#writers.values()) writer.skipTo(position);
    }
    this.#arrived++;
    if (this.#batch.length >= this.#maxBatch) this.commit();
    else this.#scheduled ??= setImmediate(() => this.#commitWhenQuiet());
  }

  /**
   * Commits once the store has stopped delivering: a live trickle commits right after it arrives, a
   * catch-up (the store delivering page after page) commits every `MAX_BATCH` events, so a row that
   * many events change is written once per batch, not once per page.
   */
  #commitWhenQuiet(): void {
    this.#scheduled = null;
    if (this.#arrived > 0) {
      this.#arrived = 0;
      this.#scheduled = setImmediate(() => this.#commitWhenQuiet());
      return;
    }
    this.commit();
  }

  /** Writes what was applied since the last commit, in one transaction for every model. */
  commit(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = null;
    if (this.#applied === this.#committed) return;
    let changes: ModelChanges[];
    try {
      changes = ModelWriter.commitAll(this.#db, [...this.#writers.values()]);
    } catch (err) {
      // The writers are back at their checkpoints: the events since are read again, none skipped.
      this.#applied = this.#committed;
      this.#batch = [];
      this.#failed(err, 'a read-model commit failed');
      return;
    }
    const commit: Commit = { from: this.#committed, to: this.#applied, events: this.#batch, changes };
    this.#committed = this.#applied;
    this.#batch = [];
    this.commits$.next(commit);
  }

  /** Stops following, after committing what was applied: a rebuild then reads up to exactly here. */
  pause(): number {
    this.#paused = true;
    this.#unsubscribe();
    this.commit();
    return this.#committed;
  }

  /**
   * Not following (the node down): takes the writers of a rebuilt generation and stands where the
   * models now stand, as if it had followed the log up to there.
   */
  adopt(replaced: readonly ModelWriter[]): void {
    for (const writer of replaced) this.#writers.set(writer.model.name, writer);
    this.#committed = this.#applied = Math.min(...[...this.#writers.values()].map((w) => w.position));
  }

  /** Follows again, with `replaced` writers (a rebuilt generation) in place of the old ones. */
  resume(replaced: readonly ModelWriter[] = []): void {
    for (const writer of replaced) this.#writers.set(writer.model.name, writer);
    this.#paused = false;
    this.start();
  }

  #failed(err: unknown, message: string): void {
    this.#unsubscribe();
    if (this.#closed) return;
    this.#log.error({ err, position: this.#committed }, `${message}; resuming from the checkpoint in 1 s`);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.start();
    }, RETRY_MS);
  }

  #unsubscribe(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = null;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe();
    this.commit();
    this.commits$.complete();
  }
}
