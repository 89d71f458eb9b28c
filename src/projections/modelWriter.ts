import type { Statement } from 'better-sqlite3';
import { readsEvent } from '../../domain/projections/foldReadModel.js';
import {
  advanceWatermark,
  retentionCutoff,
  type AnyReadModel,
  type ProjectedEvent,
  type RowKey,
  type RowReader,
} from '../../domain/projections/readModel.js';
import type { Checkpoint, ReadModelDb } from './readModelDb.js';
import { TableWriter } from './tableWriter.js';

/** What one commit changed in a model: per table, the keys of the rows written or deleted. */
export type ModelChanges = { model: string; tables: Record<string, RowKey[]> };

/**
 * One generation of one read model being written: the reducer applied to events after its checkpoint,
 * rows buffered per table, and `commit` writing the rows and the checkpoint (the caller's transaction).
 * An event at or below the checkpoint is ignored, so a restart or an overlapping read never counts twice.
 */
export class ModelWriter {
  readonly model: AnyReadModel;
  readonly generation: number;
  readonly #db: ReadModelDb;
  readonly #tables = new Map<string, TableWriter>();
  readonly #reader: RowReader<Record<string, object>>;
  /** Per retention rule: the cut made (committed), and the one this commit makes. */
  readonly #prune: Array<{ table: string; keepMs: number; statement: Statement; cutoff: number; pending: number }>;
  #checkpoint: Checkpoint;
  /** Applied but not yet committed. */
  #applied: Checkpoint;

  constructor(db: ReadModelDb, model: AnyReadModel, generation: number, checkpoint: Checkpoint) {
    this.model = model;
    this.generation = generation;
    this.#db = db;
    this.#checkpoint = { ...checkpoint };
    this.#applied = { ...checkpoint };
    for (const table of Object.keys(model.tables)) {
      const settle = (model.settle as Record<string, (row: object) => object> | undefined)?.[table];
      const name = db.tableName(model.name, table, generation);
      // No event applied yet means no row written yet: the tables are empty (a new generation, a new node).
      const empty = checkpoint.events === 0;
      const pruned = (model.retention as Record<string, unknown> | undefined)?.[table] !== undefined;
      this.#tables.set(table, new TableWriter(db.db, name, db.schema(model.name, table), { settle, empty, pruned }));
    }
    this.#reader = { get: (table, key) => this.#table(table).get(key) as never };
    this.#prune = Object.entries((model.retention ?? {}) as Record<string, { column: string; keepMs: number }>).map(
      ([table, rule]) => ({
        table,
        keepMs: rule.keepMs,
        cutoff: Number.NEGATIVE_INFINITY,
        pending: Number.NEGATIVE_INFINITY,
        statement: db.db.prepare(
          `DELETE FROM "${db.tableName(model.name, table, generation)}" WHERE "${rule.column}" < ?`,
        ),
      }),
    );
  }

  /** The position every committed row includes. */
  get position(): number {
    return this.#checkpoint.position;
  }

  /** The position applied so far (committed or not). */
  get appliedPosition(): number {
    return this.#applied.position;
  }

  get checkpoint(): Checkpoint {
    return { ...this.#checkpoint };
  }

  get dirty(): boolean {
    return this.#applied.position !== this.#checkpoint.position;
  }

  #table(name: string): TableWriter {
    const table = this.#tables.get(name);
    if (!table) throw new Error(`read model '${this.model.name}' has no table '${name}'`);
    return table;
  }

  apply(event: ProjectedEvent): void {
    if (event.position <= this.#applied.position) return;
    this.#applied.position = event.position;
    if (!readsEvent(this.model, event)) return;
    this.#applied.watermark = advanceWatermark(this.#applied.watermark, event);
    this.#applied.events++;
    for (const write of this.model.evolve(this.#reader, event, { watermark: this.#applied.watermark })) {
      const table = this.#table(write.table);
      if ('delete' in write) table.delete(write.delete);
      else table.set(write.row);
    }
  }

  /** Its tables' keys have their indexes now (a rebuild built them): rows are found by key (`TableWriter.indexed`). */
  indexed(remember = true): void {
    for (const table of this.#tables.values()) table.indexed(remember);
  }

  /**
   * Counts the other half of a rebuild split by stream (`joinHalf`): its events, and its watermark if
   * later; the next commit prunes at the joined watermark, the rows copied in from that half included.
   */
  absorb(half: Checkpoint): void {
    this.#applied.watermark = Math.max(this.#applied.watermark, half.watermark);
    this.#applied.events += half.events;
    for (const rule of this.#prune) rule.cutoff = Number.NEGATIVE_INFINITY;
  }

  /** A row of the other half, for a table with a `merge`. */
  join(table: string, row: object): void {
    const merge = (this.model.merge as Record<string, (a: object, b: object) => object> | undefined)?.[table];
    if (!merge) throw new Error(`read model '${this.model.name}': table '${table}' has no merge`);
    this.#table(table).join(row, merge);
  }

  /** Counts events passed without reading them (a rebuild starting past the log's start): only the position moves. */
  skipTo(position: number): void {
    if (position > this.#applied.position) this.#applied.position = position;
  }

  /**
   * Writes buffered rows, applies retention and records the checkpoint, inside the caller's
   * transaction; nothing in memory counts as committed until `committed()` (the transaction held).
   */
  #write(keys: boolean): ModelChanges {
    const changes: ModelChanges = { model: this.model.name, tables: {} };
    for (const [name, table] of this.#tables) {
      const written = table.flush(keys);
      if (written.length > 0) changes.tables[name] = written;
    }
    for (const rule of this.#prune) {
      // A cut a failed commit made was rolled back with it: only this commit's own cut counts.
      rule.pending = Number.NEGATIVE_INFINITY;
      const cutoff = retentionCutoff(this.#applied.watermark, rule.keepMs);
      if (cutoff <= rule.cutoff) continue;
      // Only once the transaction holds is this cut made (`commitAll`); a failed commit makes it again.
      rule.pending = cutoff;
      const deleted = rule.statement.run(cutoff).changes;
      if (deleted > 0) this.#table(rule.table).forget();
    }
    if (this.#db.state(this.model.name).generation === this.generation)
      this.#db.saveCheckpoint(this.model.name, this.#applied);
    return changes;
  }

  /**
   * Commits the writers of one database in one transaction. If it fails, every writer is back at its
   * last committed checkpoint with nothing buffered, so the events since are applied again — never
   * skipped — and the error is thrown. The changes name the rows written, unless `keys` is false (a
   * rebuild's commits: nobody follows them).
   */
  static commitAll(db: ReadModelDb, writers: readonly ModelWriter[], { keys = true } = {}): ModelChanges[] {
    let changes: ModelChanges[];
    try {
      changes = db.transaction(() => writers.map((w) => w.#write(keys)));
    } catch (err) {
      for (const w of writers) {
        for (const table of w.#tables.values()) table.discard();
        w.#applied = { ...w.#checkpoint };
      }
      throw err;
    }
    for (const w of writers) {
      for (const table of w.#tables.values()) table.committed();
      w.#checkpoint = { ...w.#applied };
      for (const rule of w.#prune) rule.cutoff = Math.max(rule.cutoff, rule.pending);
    }
    return changes;
  }
}
