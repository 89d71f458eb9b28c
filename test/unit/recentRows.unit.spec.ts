import { describe, expect, it } from 'vitest';
import { RecentRows } from '../../src/store/sqlite/recentRows.js';
import type { EventRow } from '../../src/store/sqlite/statements.js';

const rows = (from: number, to: number, stream = (p: number) => (p % 3 === 0 ? 'rare-1' : 'task-1')): EventRow[] =>
  Array.from({ length: to - from + 1 }, (_, i) => {
    const position = BigInt(from + i);
    return {
      position,
      id: `e${position}`,
      stream: stream(from + i),
      revision: 0n,
      type: 'T',
      data: '{}',
      metadata: null,
      time: 0n,
    };
  });
const at = (page: { rows: EventRow[] } | undefined) => page?.rows.map((r) => Number(r.position));

describe('RecentRows', () => {
  it('serves pages across consecutive commits, and nothing it does not hold whole', () => {
    const recent = new RecentRows();
    expect(recent.page(0n, 5n, 10, undefined)).toBeUndefined();
    recent.add(0n, rows(1, 5));
    recent.add(5n, rows(6, 9));
    expect(at(recent.page(3n, 9n, 10, undefined))).toEqual([4, 5, 6, 7, 8, 9]);
    expect(recent.page(3n, 9n, 2, undefined)).toMatchObject({ through: 5n });
    expect(recent.page(3n, 10n, 10, undefined)).toBeUndefined();
    const rare = recent.page(0n, 9n, 10, ['rare-']);
    expect(at(rare)).toEqual([3, 6, 9]);
    expect(rare?.through).toBe(9n);
  });

  it('starts afresh after a gap (another process committed between) and after clear', () => {
    const recent = new RecentRows();
    recent.add(0n, rows(1, 5));
    recent.add(7n, rows(8, 9));
    expect(recent.page(4n, 9n, 10, undefined)).toBeUndefined();
    expect(at(recent.page(7n, 9n, 10, undefined))).toEqual([8, 9]);
    recent.clear();
    expect(recent.page(7n, 9n, 10, undefined)).toBeUndefined();
  });

  it('takes a commit of any size', () => {
    const recent = new RecentRows();
    recent.add(0n, rows(1, 10));
    // Spread into push() as arguments, 200,000 rows overflowed the call stack.
    recent.add(10n, rows(11, 200_010));
    expect(at(recent.page(199_990n, 200_010n, 5, undefined))).toEqual([199_991, 199_992, 199_993, 199_994, 199_995]);
  });

  it('keeps the latest rows only, and knows where they begin', () => {
    const recent = new RecentRows();
    let last = 0;
    for (let commit = 0; commit < 50; commit++) {
      recent.add(BigInt(last), rows(last + 1, last + 1_000));
      last += 1_000;
    }
    expect(recent.page(0n, 50_000n, 10, undefined)).toBeUndefined();
    const tail = recent.page(BigInt(last - 20_000), BigInt(last), 20_000, undefined);
    expect(tail?.rows).toHaveLength(20_000);
    expect(Number(tail?.rows[0]?.position)).toBe(last - 20_000 + 1);
  });
});
