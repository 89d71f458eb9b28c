import type Database from 'better-sqlite3';
import { keyText, type RowKey } from '../../domain/projections/readModel.js';
import type { TableSchema } from './tableSchema.js';

/** Rows kept in memory per table between commits; past this, the cache is dropped after a commit. */
const MAX_CACHED_ROWS = 100_000;
/** Keys remembered for a table that started empty (so a miss needs no read); past this, misses read. */
const MAX_KNOWN_KEYS = 1_000_000;

/**
 * One table of a model generation as its reducer sees it: rows read once from SQLite and then served
 * from memory, writes kept in memory until the commit writes each changed row once. A batch of events
 * that touch the same row (a fire and its outcome, a task's board row) costs one write.
 *
 * A table that started empty (a rebuild's new generation, a new node's first catch-up) holds only
 * rows this writer wrote: it remembers their keys, and a key it never wrote is absent without asking
 * SQLite — most rows a rebuild touches are new (a minute's statistics, a fire's attempt).
 */
export class TableWriter {
  readonly #schema: TableSchema;
  readonly #get: Database.Statement;
  readonly #upsert: Database.Statement;
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

  constructor(
    db: Database.Database,
    name: string,
    schema: TableSchema,
    options: { settle?: (row: object) => object; empty?: boolean } = {},
  ) {
    this.#schema = schema;
    this.#settle = options.settle;
    this.#known = options.empty ? new Set() : null;
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
    this.#upsert = db.prepare(
      `INSERT INTO "${name}" (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
       ON CONFLICT (${schema.key.map((k) => `"${k}"`).join(', ')}) DO UPDATE SET ${columns
         .map((c) => `${c} = excluded.${c}`)
         .join(', ')}`,
    );
    this.#delete = db.prepare(`DELETE FROM "${name}" WHERE ${byKey}`);
  }

  get(key: RowKey): object | undefined {
    const text = keyText(key);
    let row = this.#cache.get(text);
    if (row === undefined) {
      if (this.#known && !this.#known.has(text)) return undefined;
      const record = this.#get.get(...key) as Record<string, unknown> | undefined;
      row = record ? this.#schema.fromRecord(record) : null;
      this.#cache.set(text, row);
    }
    return row ?? undefined;
  }

  set(row: object): void {
    const text = this.#textOf(row);
    this.#cache.set(text, row);
    this.#dirty.add(text);
    this.#deleted.delete(text);
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
    for (const text of this.#dirty) {
      let row = this.#cache.get(text);
      if (row) {
        if (this.#settle) this.#cache.set(text, (row = this.#settle(row)));
        this.#upsert.run(...this.#schema.toValues(row));
        this.#known?.add(text);
        keys.push(this.#keyOf(row));
      } else {
        const key = this.#deleted.get(text) as RowKey;
        this.#delete.run(...key);
        this.#known?.delete(text);
        keys.push(key);
      }
    }
    this.#dirty.clear();
    this.#deleted.clear();
    if (this.#known && this.#known.size > MAX_KNOWN_KEYS) this.#known = null;
    if (this.#cache.size > MAX_CACHED_ROWS) this.#cache.clear();
    return keys;
  }

  /** Forgets what the commit did not write (a failed transaction rolled it back): from now on, misses read. */
  discard(): void {
    this.#dirty.clear();
    this.#deleted.clear();
    this.#cache.clear();
    this.#known = null;
  }

  /** After rows were deleted behind the cache's back (retention). */
  forget(): void {
    this.#cache.clear();
    this.#known = null;
  }
}
