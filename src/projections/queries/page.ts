import { ValidationError } from '../../../domain/errors/index.js';

/**
 * Keyset pagination shared by the read-side queries: a page is the rows after a cursor in a fixed
 * order, and the cursor is the sort key of the last row given, as opaque URL-safe text. Unlike an
 * offset, a cursor stays exact while rows are added in front of it (new fires arrive all the time).
 */

export type Page<T> = { items: T[]; next: string | null };

export const encodeCursor = (key: readonly (string | number | null)[]): string =>
  Buffer.from(JSON.stringify(key)).toString('base64url');

/** The sort key a cursor carries; a ValidationError naming `cursor` when it is not one of ours. */
export const decodeCursor = (text: string, arity: number): Array<string | number | null> => {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  const valid =
    Array.isArray(key) &&
    key.length === arity &&
    key.every((v) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)));
  if (!valid) throw new ValidationError([{ path: 'cursor', message: 'is not a cursor this query returned' }]);
  return key as Array<string | number | null>;
};

/** Cuts `limit + 1` rows to a page: the extra row only says whether there is a next page. */
export const pageOf = <Row, T>(
  rows: Row[],
  limit: number,
  keyOf: (row: Row) => readonly (string | number | null)[],
  view: (row: Row) => T,
): Page<T> => {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  const last = kept.at(-1);
  return { items: kept.map(view), next: more && last !== undefined ? encodeCursor(keyOf(last)) : null };
};

/** ISO text of epoch ms, or null. */
export const isoOrNull = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();
