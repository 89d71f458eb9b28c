import type Database from 'better-sqlite3';
import { keyText, type RowKey } from '../../domain/projections/readModel.js';
import type { TableSchema } from './tableSchema.js';

/** Rows kept in memory per table between commits; past this, the cache is dropped after a commit. */
const MAX_CACHED_ROWS = 50_000;

/**
 * One table of a model generation as its reducer sees it: rows read once from SQLite and then served
 * from memory, writes kept in memory until the commit writes each changed row once. A batch of events
 * that touch the same row (a fire and its outcome, a task's board row) costs one write.
 */
export class TableWriter {
  readonly #schema: TableSchema;
  readonly #get: Database.Statement;
  readonly #upsert: Database.Statement;
  readonly #delete: Database.Statement;
  readonly #settle: ((row: object) => object) | undefined;
  /** key text → row, or null for a row known to be absent (deleted, or not found). */
  readonly #cache = new Map<string, object | null>();
  readonly #dirty = new Map<string, RowKey>();

  constructor(db: Database.Database, name: string, schema: TableSchema, settle?: (row: object) => object) {
    this.#schema = schema;
    this.#settle = settle;
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
      const record = this.#get.get(...key) as Record<string, unknown> | undefined;
      row = record ? this.#schema.fromRecord(record) : null;
      this.#cache.set(text, row);
    }
    return row ?? undefined;
  }

  set(key: RowKey, row: object): void {
    const text = keyText(key);
    this.#cache.set(text, row);
    this.#dirty.set(text, key);
  }

  delete(key: RowKey): void {
    const text = keyText(key);
    this.#cache.set(text, null);
    this.#dirty.set(text, key);
  }

  get pending(): number {
    return this.#dirty.size;
  }

  /** Writes every changed row (settling derived columns first); call inside the commit's transaction. Returns their keys. */
  flush(): RowKey[] {
    const keys: RowKey[] = [];
    for (const [text, key] of this.#dirty) {
      let row = this.#cache.get(text);
      if (row) {
        if (this.#settle) this.#cache.set(text, (row = this.#settle(row)));
        this.#upsert.run(...this.#schema.toValues(row));
      } else {
        this.#delete.run(...key);
      }
      keys.push(key);
    }
    this.#dirty.clear();
    if (this.#cache.size > MAX_CACHED_ROWS) this.#cache.clear();
    return keys;
  }

  /** Forgets what the commit did not write (a failed transaction rolled it back). */
  discard(): void {
    this.#dirty.clear();
    this.#cache.clear();
  }

  /** After rows were deleted behind the cache's back (retention). */
  forget(): void {
    this.#cache.clear();
  }
}
