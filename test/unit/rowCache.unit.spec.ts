import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { keyText, type RowKey } from '../../domain/projections/readModel.js';
import { RowCache } from '../../src/projections/rowCache.js';
import { tableSchemaOf } from '../../src/projections/tableSchema.js';

/**
 * The table writer's cache finds rows by their key's values instead of their key's text; it must
 * still say two keys are the same exactly when their texts are (`keyText`), as SQLite's lookups and
 * the writer's rowid map (by text) do.
 */

type Entry = { text: string; id: number };

const Row = z.object({ task: z.string(), bucket: z.number(), attempt: z.number(), note: z.string() });
type Row = z.output<typeof Row>;
const cacheOf = (key: ReadonlyArray<keyof Row & string>): RowCache<Entry> =>
  new RowCache(tableSchemaOf({ row: Row, key } as never));
const put = (cache: RowCache<Entry>, key: RowKey, id: number): void => cache.add(key, { text: keyText(key), id });

describe('row cache', () => {
  it.each([
    ['one column', ['task'] as const, ['t1'], { task: 't1', bucket: 5, attempt: 1, note: '' }],
    ['two columns', ['task', 'bucket'] as const, ['t1', 5], { task: 't1', bucket: 5, attempt: 1, note: '' }],
    [
      'three columns',
      ['task', 'bucket', 'attempt'] as const,
      ['t1', 5, 1],
      { task: 't1', bucket: 5, attempt: 1, note: '' },
    ],
  ])('%s: a row is found by its key and by the row itself; another key is not', (_, columns, key, row) => {
    const cache = cacheOf(columns);
    put(cache, key as RowKey, 1);
    expect(cache.get(key as RowKey)?.id).toBe(1);
    expect(cache.ofRow(row)?.id).toBe(1);
    expect(cache.ofRow({ ...row, task: 't2' })).toBeUndefined();
    expect(cache.get(['t2', 5, 1].slice(0, columns.length) as RowKey)).toBeUndefined();
    expect(cache.size).toBe(1);
    cache.clear();
    expect(cache.get(key as RowKey)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keys are the same exactly when their texts are: 5 and "5" meet, "05" and " 5" stay apart', () => {
    const cache = cacheOf(['task', 'bucket']);
    put(cache, ['t1', 5], 1);
    expect(cache.get(['t1', '5'])?.id).toBe(1);
    expect(cache.get(['t1', '05'])).toBeUndefined();
    expect(cache.get(['t1', ' 5'])).toBeUndefined();
    expect(cache.get(['t1', 5.5])).toBeUndefined();
    // A text column compares as text: a number given for it meets its text.
    const byNote = cacheOf(['note']);
    put(byNote, ['7'], 2);
    expect(byNote.get([7])?.id).toBe(2);
    expect(byNote.get(['07'])).toBeUndefined();
  });

  it('the text of a wide key a lookup just made is the one a miss asks for next', () => {
    const cache = cacheOf(['task', 'bucket', 'attempt']);
    const key: RowKey = ['t1', 5, 1];
    expect(cache.get(key)).toBeUndefined();
    expect(cache.textOfKey(key)).toBe(keyText(key));
    const row = { task: 't1', bucket: 6, attempt: 2, note: '' };
    expect(cache.ofRow(row)).toBeUndefined();
    expect(cache.textOfRow(row)).toBe(keyText(['t1', 6, 2]));
    // Another key asked next: its own text, not the one remembered.
    expect(cache.textOfKey(['t9', 1, 1])).toBe(keyText(['t9', 1, 1]));
    // The text is recalled once, right after the lookup: a key array changed since is read again.
    const reused: Array<string | number> = ['t1', 5, 1];
    expect(cache.get(reused)).toBeUndefined();
    expect(cache.textOfKey(reused)).toBe(keyText(['t1', 5, 1]));
    reused[2] = 2;
    expect(cache.textOfKey(reused)).toBe(keyText(['t1', 5, 2]));
  });
});
