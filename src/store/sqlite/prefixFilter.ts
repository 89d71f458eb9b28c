/**
 * Stream-prefix filters as index-friendly range conditions. SQLite compares TEXT with the BINARY
 * collation, i.e. UTF-8 bytes, which is code point order; every string starting with `p` lies in
 * [p, successor(p)) in that order, and nothing else does. User text only ever travels as a bound
 * parameter, so `%`, `_` or quotes in a prefix mean themselves.
 */

const SURROGATES_START = 0xd800;
const SURROGATES_END = 0xdfff;
const MAX_CODE_POINT = 0x10ffff;

/** The smallest string greater than every string starting with `prefix`; undefined when none exists. */
export const prefixUpperBound = (prefix: string): string | undefined => {
  const codePoints = Array.from(prefix);
  while (codePoints.length > 0) {
    const last = (codePoints.pop() as string).codePointAt(0) as number;
    if (last < MAX_CODE_POINT) {
      // Surrogate code points cannot be stored in UTF-8; the next real one is U+E000.
      const next = last + 1 >= SURROGATES_START && last + 1 <= SURROGATES_END ? SURROGATES_END + 1 : last + 1;
      return codePoints.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
};

/**
 * A SQL condition (with `?` placeholders) and its parameters matching streams that start with any of
 * `prefixes`. `+stream` keeps the planner on the position (rowid) range, whose cost per page is bounded,
 * instead of the stream index followed by a sort of every matching row.
 */
export const prefixCondition = (prefixes: readonly string[]): { sql: string; params: string[] } => {
  if (prefixes.length === 0) return { sql: '0', params: [] };
  const terms: string[] = [];
  const params: string[] = [];
  for (const prefix of prefixes) {
    const upper = prefixUpperBound(prefix);
    if (upper === undefined) {
      terms.push('+stream >= ?');
      params.push(prefix);
    } else {
      terms.push('(+stream >= ? AND +stream < ?)');
      params.push(prefix, upper);
    }
  }
  return { sql: `(${terms.join(' OR ')})`, params };
};
