import type Database from 'better-sqlite3';
import type { z } from 'zod';
import type { TableDefinition } from '../../domain/projections/readModel.js';

/**
 * How a read model's table is laid out in SQLite, derived once from the row's zod schema: one column
 * per field, named as the field; strings and enums as TEXT, numbers as INTEGER (SQLite keeps a
 * fraction as REAL), booleans as 0/1, anything else (arrays, objects) as JSON text.
 */

type ColumnKind = 'text' | 'number' | 'boolean' | 'json';

export type Column = { name: string; kind: ColumnKind };

export type TableSchema = {
  columns: readonly Column[];
  key: readonly string[];
  /** Row → values in column order. */
  toValues(row: object): unknown[];
  /** A row read from SQLite (column → value) → the row. */
  fromRecord(record: Record<string, unknown>): object;
};

type ZodDef = { type: string; innerType?: z.ZodType; values?: readonly unknown[]; entries?: Record<string, unknown> };
const defOf = (schema: z.ZodType): ZodDef => (schema as unknown as { _zod: { def: ZodDef } })._zod.def;

/** What a field holds once optional/nullable/default wrappers are looked through. */
const kindOf = (schema: z.ZodType): ColumnKind => {
  let def = defOf(schema);
  while ((def.type === 'nullable' || def.type === 'optional' || def.type === 'default') && def.innerType)
    def = defOf(def.innerType);
  switch (def.type) {
    case 'string':
    case 'enum':
      return 'text';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'literal':
      return typeof def.values?.[0] === 'number' ? 'number' : typeof def.values?.[0] === 'string' ? 'text' : 'json';
    default:
      return 'json';
  }
};

const SQL_TYPE: Record<ColumnKind, string> = { text: 'TEXT', number: 'INTEGER', boolean: 'INTEGER', json: 'TEXT' };

export const tableSchemaOf = (definition: TableDefinition<object>): TableSchema => {
  const shape = (definition.row as unknown as { shape?: Record<string, z.ZodType> }).shape;
  if (!shape) throw new Error('a read model row must be a z.object');
  const columns = Object.entries(shape).map(([name, field]) => ({ name, kind: kindOf(field) }));
  for (const key of definition.key) {
    if (!columns.some((c) => c.name === key)) throw new Error(`key column '${key}' is not a field of the row`);
  }
  return {
    columns,
    key: definition.key,
    toValues: (row) =>
      columns.map(({ name, kind }) => {
        const value = (row as Record<string, unknown>)[name];
        if (value === undefined || value === null) return null;
        return kind === 'json' ? JSON.stringify(value) : kind === 'boolean' ? (value ? 1 : 0) : value;
      }),
    fromRecord: (record) => {
      const row: Record<string, unknown> = {};
      for (const { name, kind } of columns) {
        const value = record[name];
        row[name] =
          value === null || value === undefined
            ? null
            : kind === 'json'
              ? JSON.parse(value as string)
              : kind === 'boolean'
                ? value === 1
                : value;
      }
      return row;
    },
  };
};

/**
 * `CREATE TABLE` for a table under its stored name. Its key is a unique index of its own
 * (`createKeyIndexSql`) rather than a `PRIMARY KEY`, so a rebuild can fill the table first and index
 * the key once, by a sort (tables of older versions carry a `PRIMARY KEY`: the same uniqueness).
 */
export const createTableSql = (name: string, schema: TableSchema): string =>
  `CREATE TABLE IF NOT EXISTS "${name}" (${schema.columns.map((c) => `"${c.name}" ${SQL_TYPE[c.kind]}`).join(', ')})`;

/** The unique index on a table's key columns. */
export const createKeyIndexSql = (name: string, key: readonly string[]): string =>
  `CREATE UNIQUE INDEX IF NOT EXISTS "${name}__key" ON "${name}" (${key.map((k) => `"${k}"`).join(', ')})`;

/**
 * Whether a table has a unique index on exactly its key (`createKeyIndexSql`), or an older `PRIMARY
 * KEY` on it: an index of its own, or for a single INTEGER column the rowid itself (no index listed).
 */
export const hasKeyIndex = (db: Database.Database, name: string, key: readonly string[]): boolean =>
  (db.prepare(`PRAGMA table_info("${name}")`).all() as Array<{ name: string; pk: number }>)
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name)
    .join('\u0000') === key.join('\u0000') ||
  (db.prepare(`PRAGMA index_list("${name}")`).all() as Array<{ name: string; unique: number }>).some(
    (index) =>
      index.unique === 1 &&
      (db.prepare(`PRAGMA index_info("${index.name}")`).all() as Array<{ name: string }>)
        .map((c) => c.name)
        .join('\u0000') === key.join('\u0000'),
  );

/** `CREATE INDEX` for each column list (in order), named after the table and the columns. */
export const createIndexSql = (name: string, indexes: ReadonlyArray<readonly string[]>): string[] =>
  indexes.map(
    (columns) =>
      `CREATE INDEX IF NOT EXISTS "${name}__${columns.join('_').replace(/[^A-Za-z0-9_]/g, '')}" ON "${name}" (${columns
        .map((c) => (c.endsWith(' DESC') ? `"${c.slice(0, -5)}" DESC` : `"${c}"`))
        .join(', ')})`,
  );
