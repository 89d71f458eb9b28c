import { describe, expect, it } from 'vitest';
import { toIso, toMillis } from '../../domain/time/instant.js';

describe('instants', () => {
  it('reads the log’s own ISO form exactly like Date.parse', () => {
    for (const iso of [
      '2026-03-29T01:00:00.000Z',
      '1970-01-01T00:00:00.000Z',
      '2024-02-29T23:59:59.999Z',
      '2099-12-31T12:34:56.789Z',
    ]) {
      expect(toMillis(iso)).toBe(Date.parse(iso));
    }
  });

  it('falls back to Date.parse for offsets and other forms', () => {
    expect(toMillis('2026-03-29T03:00:00+02:00')).toBe(Date.UTC(2026, 2, 29, 1));
    expect(toMillis('2026-03-29T01:00:00Z')).toBe(Date.UTC(2026, 2, 29, 1));
    expect(toMillis('not a date')).toBeNaN();
  });

  it('round-trips through toIso', () => {
    for (let ms = 0; ms < 5_000_000_000_000; ms += 123_456_789_013) expect(toMillis(toIso(ms))).toBe(ms);
    expect(toIso(1)).toBe('1970-01-01T00:00:00.001Z');
    expect(toIso(1)).toBe(toIso(1));
  });
});
