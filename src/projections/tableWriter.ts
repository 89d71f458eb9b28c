import type Database from 'better-sqlite3';
import type { RowKey } from '../../domain/projections/readModel.js';
import { RowCache } from './rowCache.js';
import { createKeyIndexSql, hasKeyIndex, type TableSchema } from './tableSchema.js';

/** Rows kept in memory per table between commits; past this, the cache is dropped after a commit. */
const MAX_CACHED_ROWS = 100_000;
/**
 * Keys (or rowids, until the key is indexed) remembered for a table that started empty, so a miss
 * needs no read; past this, the memory is given back: misses read, and the key gets its index.
 */
const MAX_KNOWN_KEYS = 1_000_000;

/**
 * New rows inserted by one statement while the key has no index: a rebuild's rows are nearly all new,
 * and a call into SQLite per row cost more than the row (500,000 rows of the fire index: 1.0 s one by
 * one, 0.58 s 32 at a time).
 */
const INSERT_BATCH = 32;

/** A row of the cache: one lookup finds it, and whether the next flush writes it. */
type CachedRow = {
  readonly text: string;
  /** null: known to be absent (deleted, or not found). */
  row: object | null;
  /** Changed since the last flush (it is in the dirty list). */
  dirty: boolean;
  /** The key of a row deleted since the last flush (a row written has its key in it). */
  deleted: RowKey | null;
};

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
  /** The rows as this writer knows them, by key. */
  readonly #cache: RowCache<CachedRow>;
  /** The rows changed since the last flush, each once. */
  #dirty: CachedRow[] = [];
  readonly #keyOf: (row: object) => RowKey;
  /** The keys of every row the table holds, while it is known (it started empty); null otherwise. */
  #known: Set<string> | null;
  /** While the key has no index: the rowid of every row the table holds, by key text. */
  #rowids: Map<string, number> | null = null;
  /** The rowid-map changes of the flush under way, undone if its transaction fails: keys added, and keys removed with their rowids. */
  #undo: { added: string[]; removed: Array<[text: string, rowid: number]> } = { added: [], removed: [] };
  /** New rows of the flush under way waiting for their batch insert: their keys, and their values one after another. */
  #batch: { texts: string[]; values: unknown[] } = { texts: [], values: [] };
  /** The flush under way built the key's index: rows are found by it once its transaction holds. */
  #keyIndexed = false;
  readonly #byRowid: {
    get: Database.Statement;
    insert: Database.Statement;
    insertBatch: Database.Statement;
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
    this.#cache = new RowCache(schema);
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
      insert: db.prepare(`INSERT INTO "${name}" (${columns.join(', ')}) VALUES ${placeholders(columns.length, 1)}`),
      insertBatch: db.prepare(
        `INSERT INTO "${name}" (${columns.join(', ')}) VALUES ${placeholders(columns.length, INSERT_BATCH)}`,
      ),
      update: db.prepare(`UPDATE "${name}" SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE rowid = ?`),
      delete: db.prepare(`DELETE FROM "${name}" WHERE rowid = ?`),
    };
  }

  get(key: RowKey): object | undefined {
    const cached = this.#cache.get(key);
    if (cached) return cached.row ?? undefined;
    const text = this.#cache.textOfKey(key);
    if (this.#known && !this.#known.has(text)) return undefined;
    const rowid = this.#rowids?.get(text);
    if (this.#rowids && rowid === undefined) return undefined;
    const record = (rowid === undefined ? this.#get.get(...key) : this.#byRowid.get.get(rowid)) as
      Record<string, unknown> | undefined;
    const row = record ? this.#schema.fromRecord(record) : null;
    this.#cache.add(key, { text, row, dirty: false, deleted: null });
    return row ?? undefined;
  }

  set(row: object): void {
    const cached = this.#cache.ofRow(row);
    if (cached) this.#change(cached, row, null);
    else this.#add(this.#keyOf(row), this.#cache.textOfRow(row), row, null);
  }

  /** A row of the other half of a rebuild split by stream: merged with this half's row at its key, if there is one. */
  join(row: object, merge: (a: object, b: object) => object): void {
    const mine = this.get(this.#keyOf(row));
    this.set(mine ? merge(mine, row) : row);
  }

  delete(key: RowKey): void {
    const cached = this.#cache.get(key);
    if (cached) this.#change(cached, null, key);
    else this.#add(key, this.#cache.textOfKey(key), null, key);
  }

  #change(cached: CachedRow, row: object | null, deleted: RowKey | null): void {
    cached.row = row;
    cached.deleted = deleted;
    if (cached.dirty) return;
    cached.dirty = true;
    this.#dirty.push(cached);
  }

  #add(key: RowKey, text: string, row: object | null, deleted: RowKey | null): void {
    const added: CachedRow = { text, row, dirty: true, deleted };
    this.#cache.add(key, added);
    this.#dirty.push(added);
  }

  get pending(): number {
    return this.#dirty.length;
  }

  /**
   * Writes every changed row (settling derived columns first); call inside the commit's transaction.
   * Returns their keys, when `keys` (a rebuild has nobody to tell).
   */
  flush(keys = true): RowKey[] {
    const written: RowKey[] = [];
    this.#undo = { added: [], removed: [] };
    for (const changed of this.#dirty) {
      const { text } = changed;
      changed.dirty = false;
      let row = changed.row;
      if (row) {
        if (this.#settle) changed.row = row = this.#settle(row);
        if (this.#rowids) this.#writeByRowid(text, this.#schema.toValues(row));
        else (this.#upsert ??= this.#db.prepare(this.#upsertSql)).run(...this.#schema.toValues(row));
        this.#known?.add(text);
        if (keys) written.push(this.#keyOf(row));
      } else {
        const key = changed.deleted as RowKey;
        changed.deleted = null;
        if (this.#rowids) this.#deleteByRowid(text);
        else this.#delete.run(...key);
        this.#known?.delete(text);
        if (keys) written.push(key);
      }
    }
    this.#insertBatch();
    this.#dirty = [];
    if (this.#known && this.#known.size > MAX_KNOWN_KEYS) this.#known = null;
    if (this.#cache.size > MAX_CACHED_ROWS) this.#cache.clear();
    // In the commit's transaction: a failure (a key twice would be one) fails the commit, retried.
    if (this.#rowids && this.#rowids.size > MAX_KNOWN_KEYS) {
      this.#indexKey();
      this.#keyIndexed = true;
    }
    return written;
  }

  #writeByRowid(text: string, values: unknown[]): void {
    const rowid = (this.#rowids as Map<string, number>).get(text);
    if (rowid !== undefined) {
      if (this.#byRowid.update.run(...values, rowid).changes !== 1) this.#lost(text, rowid);
      return;
    }
    const batch = this.#batch;
    batch.texts.push(text);
    for (const value of values) batch.values.push(value);
    if (batch.texts.length === INSERT_BATCH) this.#insertBatch();
  }

  /**
   * Inserts the new rows waiting (a full batch in one statement, fewer one by one) and remembers their
   * rowids: the rows of one `INSERT … VALUES` are inserted in order, each given one more than the
   * largest rowid so far, so theirs are the consecutive ones ending at the last.
   */
  #insertBatch(): void {
    const { texts, values } = this.#batch;
    if (texts.length === 0) return;
    const rowids = this.#rowids as Map<string, number>;
    const added = this.#undo.added;
    if (texts.length === INSERT_BATCH) {
      const last = Number(this.#byRowid.insertBatch.run(...values).lastInsertRowid);
      texts.forEach((text, i) => rowids.set(text, last - INSERT_BATCH + 1 + i));
      added.push(...texts);
    } else {
      const width = this.#schema.columns.length;
      // Each rowid is undone from the moment it is remembered: a later insert of these may fail.
      texts.forEach((text, i) => {
        rowids.set(text, Number(this.#byRowid.insert.run(...values.slice(i * width, (i + 1) * width)).lastInsertRowid));
        added.push(text);
      });
    }
    this.#batch = { texts: [], values: [] };
  }

  #deleteByRowid(text: string): void {
    const rowids = this.#rowids as Map<string, number>;
    const rowid = rowids.get(text);
    if (rowid === undefined) return;
    if (this.#byRowid.delete.run(rowid).changes !== 1) this.#lost(text, rowid);
    rowids.delete(text);
    this.#undo.removed.push([text, rowid]);
  }

  /** A row the rowid map holds is not there: fails the commit rather than lose a write. */
  #lost(text: string, rowid: number): never {
    throw new Error(`read model table ${this.#name}: no row at rowid ${rowid} for key ${JSON.stringify(text)}`);
  }

  /** After the commit's transaction held. */
  committed(): void {
    this.#undo = { added: [], removed: [] };
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
    this.#dirty = [];
    this.#cache.clear();
    this.#known = null;
    this.#keyIndexed = false;
    this.#batch = { texts: [], values: [] };
    if (!this.#rowids) return;
    // Rowids of rows the rollback removed may be handed out again: the map must say what the table holds.
    // A flush writes each key once, so no key is both added and removed.
    for (const text of this.#undo.added) this.#rowids.delete(text);
    for (const [text, rowid] of this.#undo.removed) this.#rowids.set(text, rowid);
    this.#undo = { added: [], removed: [] };
  }

  /** After rows were deleted behind the cache's back (retention). */
  forget(): void {
    this.#cache.clear();
    this.#known = null;
  }
}

/** `(?, …, ?)` for one row of `width` values, `rows` times. */
const placeholders = (width: number, rows: number): string =>
  Array.from({ length: rows }, () => `(${Array.from({ length: width }, () => '?').join(', ')})`).join(', ');
