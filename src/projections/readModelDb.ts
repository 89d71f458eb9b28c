import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { IllegalStateError } from '../../domain/errors/index.js';
import type { AnyReadModel } from '../../domain/projections/readModel.js';
import {
  createIndexSql,
  createKeyIndexSql,
  createTableSql,
  hasKeyIndex,
  tableSchemaOf,
  type TableSchema,
} from './tableSchema.js';

/** Removes a SQLite database file and its WAL companions (a scratch database). */
export const removeDatabaseFiles = (file: string): void => {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
};

/** A read model as the runtime runs it: the pure model and the indexes its queries need. */
export type RegisteredModel = {
  model: AnyReadModel;
  /** Per table, the column lists to index (a column may end in ` DESC`). */
  indexes?: Record<string, ReadonlyArray<readonly string[]>>;
};

/** Where a model's live rows stand: the log position its rows include, and the time the log has reached. */
export type Checkpoint = { position: number; watermark: number; events: number };

export type ModelState = Checkpoint & { name: string; version: number; generation: number };

const META = `
CREATE TABLE IF NOT EXISTS read_models (
  name       TEXT PRIMARY KEY,
  version    INTEGER NOT NULL,
  generation INTEGER NOT NULL,
  position   INTEGER NOT NULL,
  watermark  INTEGER NOT NULL,
  events     INTEGER NOT NULL
);`;

const GENERATION_TABLE = /^([A-Za-z0-9]+)__([A-Za-z0-9]+)__g(\d+)$/;

/**
 * The read database (`<dataDir>/read.db`): every model's rows, and per model the checkpoint its rows
 * are at. A model's tables carry a generation (`fires__attempts__g3`): a rebuild fills the next
 * generation beside the live one, and one transaction switches the checkpoint row over and drops the
 * old tables, so queries never see a half-built model. It is not the log: losing it costs a rebuild,
 * so commits are not fsynced (WAL, `synchronous=NORMAL`): a crash keeps rows and checkpoint together.
 */
export class ReadModelDb {
  readonly db: Database.Database;
  readonly #models = new Map<string, RegisteredModel>();
  readonly #schemas = new Map<string, TableSchema>();
  readonly #states = new Map<string, ModelState>();
  readonly #upsertState: Database.Statement;

  private constructor(db: Database.Database, models: readonly RegisteredModel[]) {
    this.db = db;
    this.#upsertState = db.prepare(
      `INSERT INTO read_models (name, version, generation, position, watermark, events)
       VALUES (@name, @version, @generation, @position, @watermark, @events)
       ON CONFLICT (name) DO UPDATE SET version = excluded.version, generation = excluded.generation,
         position = excluded.position, watermark = excluded.watermark, events = excluded.events`,
    );
    for (const registered of models) {
      this.#models.set(registered.model.name, registered);
      for (const [table, definition] of Object.entries(registered.model.tables))
        this.#schemas.set(`${registered.model.name}.${table}`, tableSchemaOf(definition as never));
    }
  }

  /**
   * Opens (creating) the database; a model whose version changed, or that is new, starts empty at
   * position 0. `exclusive`: the connection keeps the file locked until it closes, so a second
   * writer (another node's read side on the same file, `kairos replay` beside a running node) is
   * refused; the kernel releases the lock with the process, however it ends.
   */
  static open(
    file: string,
    models: readonly RegisteredModel[],
    options: { exclusive?: boolean; indexes?: boolean } = {},
  ): ReadModelDb {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    try {
      if (options.exclusive) db.pragma('main.locking_mode = EXCLUSIVE');
      db.pragma('busy_timeout = 1000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('cache_size = -65536');
      // Checkpoints every ~40 MB of WAL rather than 4 MB: a rebuild writes hundreds of MB.
      db.pragma('wal_autocheckpoint = 10000');
      db.exec(META);
      const readDb = new ReadModelDb(db, models);
      // The first write takes the exclusive lock, and keeps it.
      db.transaction(() => readDb.#prepare(options.indexes ?? true)).immediate();
      return readDb;
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY')
        throw new IllegalStateError(
          `the read database ${file} is in use by another process (a running node's read side?); stop it, or ask the node (kairos replay talks to it when it runs)`,
          { file },
        );
      throw err;
    }
  }

  #prepare(indexes: boolean): void {
    const stored = new Map(
      (this.db.prepare('SELECT * FROM read_models').all() as ModelState[]).map((s) => [s.name, s]),
    );
    for (const { model } of this.#models.values()) {
      const known = stored.get(model.name);
      const state: ModelState =
        known && known.version === model.version
          ? known
          : {
              name: model.name,
              version: model.version,
              generation: (known?.generation ?? 0) + 1,
              position: 0,
              watermark: 0,
              events: 0,
            };
      // A new generation starts empty: a rebuild that stopped before its switch may have left rows under
      // that very number (an old version's, maybe with other columns).
      if (state !== known) this.#dropTables((m, generation) => m === model.name && generation === state.generation);
      this.createGeneration(model.name, state.generation, { indexes });
      this.#saveState(state);
    }
    // A rebuild that did not finish (the process stopped) left its generation behind; so did an old version.
    this.#dropTables((m, generation) => this.#states.get(m)?.generation !== generation);
  }

  /** Drops every generation table (`model__table__gN`) for which `which(model, N)` holds. */
  #dropTables(which: (model: string, generation: number) => boolean): void {
    const tables = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    for (const table of tables) {
      const match = GENERATION_TABLE.exec(table);
      if (match && which(match[1] as string, Number(match[3]))) this.db.exec(`DROP TABLE "${table}"`);
    }
  }

  get models(): RegisteredModel[] {
    return [...this.#models.values()];
  }

  model(name: string): RegisteredModel | undefined {
    return this.#models.get(name);
  }

  state(name: string): ModelState {
    const state = this.#states.get(name);
    if (!state) throw new Error(`unknown read model '${name}'`);
    return state;
  }

  schema(model: string, table: string): TableSchema {
    const schema = this.#schemas.get(`${model}.${table}`);
    if (!schema) throw new Error(`unknown table '${model}.${table}'`);
    return schema;
  }

  /** The stored name of a model's table in a generation (default: the live one). */
  tableName(model: string, table: string, generation = this.state(model).generation): string {
    return `${model}__${table}__g${generation}`;
  }

  /**
   * Creates a generation's tables; `indexes: false` leaves their indexes, the key's included, for later
   * (`createIndexes`): built once over a filled table they cost a sort, kept up row by row a random
   * write per row and index — most of a rebuild's writing. Until then a `TableWriter` finds the rows
   * it wrote by rowid.
   */
  createGeneration(model: string, generation: number, options: { indexes?: boolean } = {}): void {
    for (const table of this.#tablesOf(model)) {
      this.db.exec(createTableSql(this.tableName(model, table, generation), this.schema(model, table)));
    }
    if (options.indexes ?? true) this.createIndexes(model, generation);
  }

  createIndexes(model: string, generation: number): void {
    const registered = this.#models.get(model);
    for (const table of this.#tablesOf(model)) {
      const name = this.tableName(model, table, generation);
      const { key } = this.schema(model, table);
      if (!hasKeyIndex(this.db, name, key)) this.db.exec(createKeyIndexSql(name, key));
      for (const sql of createIndexSql(name, registered?.indexes?.[table] ?? [])) this.db.exec(sql);
    }
  }

  #tablesOf(model: string): string[] {
    const registered = this.#models.get(model);
    if (!registered) throw new Error(`unknown read model '${model}'`);
    return Object.keys(registered.model.tables);
  }

  dropGeneration(model: string, generation: number): void {
    for (const table of Object.keys(this.#models.get(model)?.model.tables ?? {}))
      this.db.exec(`DROP TABLE IF EXISTS "${this.tableName(model, table, generation)}"`);
  }

  /**
   * Runs `fn` in one write transaction; if it fails, the models' states (generations, checkpoints)
   * read back as they were before it, like the rows.
   */
  transaction<T>(fn: () => T): T {
    const before = new Map([...this.#states].map(([name, state]) => [name, { ...state }]));
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      this.#states.clear();
      for (const [name, state] of before) this.#states.set(name, state);
      throw err;
    }
  }

  /** Records a live model's checkpoint; call it inside the transaction that wrote the rows. */
  saveCheckpoint(model: string, checkpoint: Checkpoint): void {
    this.#saveState({ ...this.state(model), ...checkpoint });
  }

  /** Makes `generation` the live one at `checkpoint` and drops the old one; call it inside a transaction. */
  switchTo(model: string, generation: number, checkpoint: Checkpoint): void {
    const old = this.state(model).generation;
    this.#saveState({ ...this.state(model), ...checkpoint, generation });
    if (old !== generation) this.dropGeneration(model, old);
  }

  #saveState(state: ModelState): void {
    this.#upsertState.run(state);
    this.#states.set(state.name, { ...state });
  }

  close(): void {
    this.db.close();
  }
}
