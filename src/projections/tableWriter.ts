import type Database from 'better-sqlite3';
import { keyText, type RowKey } from '../../domain/projections/readModel.js';
import { createKeyIndexSql, hasKeyIndex, type TableSchema } from './tableSchema.js';

/** Rows kept in memory per table between commits; past this, the cache is dropped after a commit. */
const MAX_CACHED_ROWS = 100_000;
/**
 * Keys (or rowids, until the key is indexed) remembered for a table that started empty, so a miss
 * needs no read; past this, the memory is given back: misses read, and the key gets its index.
 */
const MAX_KNOWN_KEYS = 1_000_000;

/** How to undo a rowid-map change when the commit's transaction fails: the key, and its rowid before. */
type RowidUndo = [text: string, rowid: number | undefined];

/**
 * One table of a model generation as its reducer sees it: rows read once from SQLite and then served
 * from memory, writes kept in memory until the commit writes each changed row once. A batch of events
 * that touch the same row (a fire and its outcome, a task's board row) costs one write.
 *
 * A table that started empty (a rebuild's new generation, a new node's first catch-up) holds only
 * rows this writer wrote: it remembers their keys, and a key it never wrote is absent without asking
 * SQLite — most rows a rebuild touches are new (a minute's statistics, a fire's attempt).
 *
 * A rebuild creates its tables without their key's index (`ReadModelDb.createGeneration`): a fire's
 * attempts arrive in time order while their key starts with the task, so keeping that index up is a
 * random write per row, where building it at the end is one sort. Until it exists, the writer keeps
 * each row's rowid instead of its key alone: a new row is a plain insert, a changed one an update by
 * rowid. Not for a table retention prunes (rows deleted behind the writer's back), nor past
 * `MAX_KNOWN_KEYS` rows: then the key's index is built and rows are found by it.
 */
export class TableWriter {
  readonly #db: Database.Database;
  readonly #name: string;
  readonly #schema: TableSchema;
  readonly #get: Database.Statement;
  /** Prepared once the key has its index (SQLite refuses an `ON CONFLICT` no unique index matches). */
  #upsert: Database.Statement | null = null;
  readonly #upsertSql: string;
  readonly #delete: Database.Statement;
  readonly #settle: ((row: object) => object) | undefined;
  /** key text → row, or null for a row known to be absent (deleted, or not found). */
  readonly #cache = new Map<string, object | null>();
  /** Key texts of rows changed since the last flush. */
  readonly #dirty = new Set<string>();
  /** The key of each row deleted since the last flush (a row written has its key in it). */
  readonly #deleted = new Map<string, RowKey>();
  readonly #keyOf: (row: object) => RowKey;
  /** `keyText(keyOf(row))` without the array: it runs for every row write. */
  readonly #textOf: (row: object) => string;
  /** The keys of every row the table holds, while it is known (it started empty); null otherwise. */
  #known: Set<string> | null;
  /** While the key has no index: the rowid of every row the table holds, by key text. */
  #rowids: Map<string, number> | null = null;
  /** The rowid-map changes of the flush under way, undone if its transaction fails. */
  #undo: RowidUndo[] = [];
  /** The flush under way built the key's index: rows are found by it once its transaction holds. */
  #keyIndexed = false;
  readonly #byRowid: {
    get: Database.Statement;
    insert: Database.Statement;
    update: Database.Statement;
    delete: Database.Statement;
  };
  readonly #indexKey: () => void;

  constructor(
    db: Database.Database,
    name: string,
    schema: TableSchema,
    options: { settle?: (row: object) => object; empty?: boolean; pruned?: boolean } = {},
  ) {
    this.#db = db;
    this.#name = name;
    this.#schema = schema;
    this.#settle = options.settle;
    this.#known = options.empty ? new Set() : null;
    this.#indexKey = () => db.exec(createKeyIndexSql(name, schema.key));
    if (!hasKeyIndex(db, name, schema.key)) {
      if (options.empty && !options.pruned) {
        this.#rowids = new Map();
        this.#known = null;
      } else this.#indexKey();
    }
    const key = schema.key;
    this.#keyOf = (row) => key.map((column) => (row as Record<string, string | number>)[column]!);
    const [a, b, c] = key as [string, string?, string?];
    const r = (row: object) => row as Record<string, string | number>;
    this.#textOf =
      key.length === 1
        ? (row) => String(r(row)[a])
        : key.length === 2
          ? (row) => `${r(row)[a]}\u0000${r(row)[b!]}`
          : key.length === 3
            ? (row) => `${r(row)[a]}\u0000${r(row)[b!]}\u0000${r(row)[c!]}`
            : (row) => keyText(this.#keyOf(row));
    const columns = schema.columns.map((c) => `"${c.name}"`);
    const byKey = schema.key.map((k) => `"${k}" = ?`).join(' AND ');
    this.#get = db.prepare(`SELECT * FROM "${name}" WHERE ${byKey}`);
    this.#upsertSql = `INSERT INTO "${name}" (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
       ON CONFLICT (${schema.key.map((k) => `"${k}"`).join(', ')}) DO UPDATE SET ${columns
         .map((c) => `${c} = excluded.${c}`)
         .join(', ')}`;
    this.#delete = db.prepare(`DELETE FROM "${name}" WHERE ${byKey}`);
    this.#byRowid = {
      get: db.prepare(`SELECT * FROM "${name}" WHERE rowid = ?`),
      insert: db.prepare(`INSERT INTO "${name}" (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`),
      update: db.prepare(`UPDATE "${name}" SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE rowid = ?`),
      delete: db.prepare(`DELETE FROM "${name}" WHERE rowid = ?`),
    };
  }

  get(key: RowKey): object | undefined {
    const text = keyText(key);
    let row = this.#cache.get(text);
    if (row === undefined) {
      if (this.#known && !this.#known.has(text)) return undefined;
      const rowid = this.#rowids?.get(text);
      if (this.#rowids && rowid === undefined) return undefined;
      const record = (rowid === undefined ? this.#get.get(...key) : this.#byRowid.get.get(rowid)) as
        Record<string, unknown> | undefined;
      row = record ? this.#schema.fromRecord(record) : null;
      this.#cache.set(text, row);
    }
    return row ?? undefined;
  }

  set(row: object): void {
    const text = this.#textOf(row);
    this.#cache.set(text, row);
    this.#dirty.add(text);
    // Rows are rarely deleted: most sets need not look.
    if (this.#deleted.size > 0) this.#deleted.delete(text);
  }

  /** A row of the other half of a rebuild split by stream: merged with this half's row at its key, if there is one. */
  join(row: object, merge: (a: object, b: object) => object): void {
    const mine = this.get(this.#keyOf(row));
    this.set(mine ? merge(mine, row) : row);
  }

  delete(key: RowKey): void {
    const text = keyText(key);
    this.#cache.set(text, null);
    this.#dirty.add(text);
    this.#deleted.set(text, key);
  }

  get pending(): number {
    return this.#dirty.size;
  }

  /** Writes every changed row (settling derived columns first); call inside the commit's transaction. Returns their keys. */
  flush(): RowKey[] {
    const keys: RowKey[] = [];
    this.#undo = [];
    for (const text of this.#dirty) {
      let row = this.#cache.get(text);
      if (row) {
        if (this.#settle) this.#cache.set(text, (row = this.#settle(row)));
        if (this.#rowids) this.#writeByRowid(text, this.#schema.toValues(row));
        else (this.#upsert ??= this.#db.prepare(this.#upsertSql)).run(...this.#schema.toValues(row));
        this.#known?.add(text);
        keys.push(this.#keyOf(row));
      } else {
        const key = this.#deleted.get(text) as RowKey;
        if (this.#rowids) this.#deleteByRowid(text);
        else this.#delete.run(...key);
        this.#known?.delete(text);
        keys.push(key);
      }
    }
    this.#dirty.clear();
    this.#deleted.clear();
    if (this.#known && this.#known.size > MAX_KNOWN_KEYS) this.#known = null;
    if (this.#cache.size > MAX_CACHED_ROWS) this.#cache.clear();
    // In the commit's transaction: a failure (a key twice would be one) fails the commit, retried.
    if (this.#rowids && this.#rowids.size > MAX_KNOWN_KEYS) {
      this.#indexKey();
      this.#keyIndexed = true;
    }
    return keys;
  }

  #writeByRowid(text: string, values: unknown[]): void {
    const rowids = this.#rowids as Map<string, number>;
    const rowid = rowids.get(text);
    if (rowid !== undefined) {
      if (this.#byRowid.update.run(...values, rowid).changes !== 1) this.#lost(text, rowid);
      return;
    }
    rowids.set(text, Number(this.#byRowid.insert.run(...values).lastInsertRowid));
    this.#undo.push([text, undefined]);
  }

  #deleteByRowid(text: string): void {
    const rowids = this.#rowids as Map<string, number>;
    const rowid = rowids.get(text);
    if (rowid === undefined) return;
    if (this.#byRowid.delete.run(rowid).changes !== 1) this.#lost(text, rowid);
    rowids.delete(text);
    this.#undo.push([text, rowid]);
  }

  /** A row the rowid map holds is not there: fails the commit rather than lose a write. */
  #lost(text: string, rowid: number): never {
    throw new Error(`read model table ${this.#name}: no row at rowid ${rowid} for key ${JSON.stringify(text)}`);
  }

  /** After the commit's transaction held. */
  committed(): void {
    this.#undo = [];
    if (this.#keyIndexed) this.indexed();
  }

  /**
   * The key has its index now (a rebuild built it, or the flush that passed `MAX_KNOWN_KEYS`): rows
   * are found by it. `remember`: keep the keys written so far, so a miss needs no read — for a writer
   * that goes on (the live models' after a switch); one about to be dropped skips that copy.
   */
  indexed(remember = true): void {
    this.#keyIndexed = false;
    if (!this.#rowids) return;
    this.#known = remember && this.#rowids.size <= MAX_KNOWN_KEYS ? new Set(this.#rowids.keys()) : null;
    this.#rowids = null;
  }

  /** Forgets what the commit did not write (a failed transaction rolled it back): from now on, misses read. */
  discard(): void {
    this.#dirty.clear();
    this.#deleted.clear();
    this.#cache.clear();
    this.#known = null;
    this.#keyIndexed = false;
    if (!this.#rowids) return;
    // Rowids of rows the rollback removed may be handed out again: the map must say what the table holds.
    for (const [text, rowid] of this.#undo.reverse()) {
      if (rowid === undefined) this.#rowids.delete(text);
      else this.#rowids.set(text, rowid);
    }
    this.#undo = [];
  }

  /** After rows were deleted behind the cache's back (retention). */
  forget(): void {
    this.#cache.clear();
    this.#known = null;
  }
}
