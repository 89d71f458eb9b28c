import { describe, expect, it } from 'vitest';
import { DEFAULT_SLOT_COUNT, murmurHash3, slotOf } from '../../domain/cluster/index.js';
import { ValidationError } from '../../domain/errors/index.js';

describe('murmurHash3', () => {
  it('is MurmurHash3_x86_32: the published test vectors', () => {
    expect(murmurHash3('', 0)).toBe(0);
    expect(murmurHash3('', 1)).toBe(0x514e28b7);
    expect(murmurHash3('', 0xffffffff)).toBe(0x81f16f39);
    expect(murmurHash3('test', 0)).toBe(0xba6bd213);
    expect(murmurHash3('abc', 0)).toBe(0xb3dd93fa);
    expect(murmurHash3('aaaa', 0x9747b28c)).toBe(0x5a97808a);
    expect(murmurHash3('Hello, world!', 0x9747b28c)).toBe(0x24884cba);
    expect(murmurHash3('The quick brown fox jumps over the lazy dog', 0x9747b28c)).toBe(0x2fa826cd);
  });

  it('hashes the UTF-8 bytes of a string', () => {
    const text = 'ünïcødé';
    // Checked against an independent Python implementation over text.encode('utf-8').
    expect(murmurHash3(text)).toBe(2210329462);
    expect(murmurHash3(new TextEncoder().encode(text))).toBe(2210329462);
    expect(murmurHash3('node-1')).toBe(2279687268);
  });
});

describe('slotOf', () => {
  it('never changes: it decides task ownership across nodes and versions', () => {
    // Golden values. If this test fails, the change would move tasks between nodes of a running cluster.
    expect(slotOf('a', 1024)).toBe(434);
    expect(slotOf('task-1', 1024)).toBe(116);
    expect(slotOf('billing.nightly', 1024)).toBe(656);
    expect(slotOf('report_2024-01', 1024)).toBe(988);
    expect(slotOf('a', 1000)).toBe(850);
    expect(slotOf('task-1', 1000)).toBe(852);
    expect(slotOf('billing.nightly', 1000)).toBe(528);
    expect(slotOf('report_2024-01', 1000)).toBe(276);
  });

  it('is murmurHash3(utf8(taskId), seed 0) mod slotCount', () => {
    for (const id of ['a', 'task-1', 'x'.repeat(128)]) {
      for (const count of [1, 7, 1000, DEFAULT_SLOT_COUNT, 65_536]) {
        expect(slotOf(id, count)).toBe(murmurHash3(id, 0) % count);
      }
    }
  });

  it('spreads 100,000 sequential ids evenly over 1024 slots', () => {
    const counts = new Array<number>(DEFAULT_SLOT_COUNT).fill(0);
    const ids = 100_000;
    for (let i = 0; i < ids; i++) {
      const slot = slotOf(`task-${i}`, DEFAULT_SLOT_COUNT);
      counts[slot] = counts[slot]! + 1;
    }
    const expected = ids / DEFAULT_SLOT_COUNT; // ≈ 97.7, standard deviation ≈ 9.9
    const chiSquare = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    // 1023 degrees of freedom: mean 1023, standard deviation ≈ 45. Measured: 993.
    expect(chiSquare).toBeGreaterThan(1023 - 4 * 45);
    expect(chiSquare).toBeLessThan(1023 + 4 * 45);
    // Measured: min 69, max 132.
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(55);
    expect(Math.max(...counts)).toBeLessThanOrEqual(145);
  });

  it('stays in range for every slot count', () => {
    for (const count of [1, 2, 3, 1023, 1024, 65_536]) {
      for (let i = 0; i < 500; i++) {
        const slot = slotOf(`t${i}`, count);
        expect(Number.isInteger(slot) && slot >= 0 && slot < count).toBe(true);
      }
    }
  });

  it('rejects a slot count that is not an integer in [1, 65536]', () => {
    for (const bad of [0, -1, 1.5, 65_537, Number.NaN, Infinity]) {
      expect(() => slotOf('a', bad)).toThrow(ValidationError);
    }
  });
});
