import { describe, expect, it } from 'vitest';
import { MAX_INSTANT_MS, toIso, toMillis } from '../../domain/time/instant.js';

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

  it('reads instants of the hour it read last and of others, in any order, as Date.parse does (years 0–99 too, which Date.UTC would read as 19xx)', () => {
    const samples = [
      '2026-03-29T01:00:00.000Z',
      '2026-03-29T01:00:59.999Z',
      '2026-03-29T01:01:00.000Z',
      '2026-03-29T01:00:30.500Z',
      '0050-06-01T12:00:00.000Z',
      '0050-06-01T12:00:01.000Z',
      '2026-03-29T01:00:6x.000Z',
      '2026-03-29T01:00:00.0x0Z',
      '2026-03-29T01:7x:00.000Z',
      '2026-03-29T01:00-00.000Z',
      '2026-03-29T02:00:00.000Z',
      '2026-02-30T01:00:00.000Z',
      '2026-03-29T01:00:00.000Z',
    ];
    for (let ms = Date.UTC(2026, 11, 31, 23, 58); ms < Date.UTC(2027, 0, 1, 0, 2); ms += 7_777) samples.push(toIso(ms));
    for (const iso of [...samples, ...samples.reverse()]) expect(toMillis(iso), iso).toEqual(Date.parse(iso));
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

  it('writes exactly what Date#toISOString writes, across seconds, minutes, days and years', () => {
    const samples = [0, 1, 999, 1_000, 59_999, 60_000, 86_399_999, 86_400_000, MAX_INSTANT_MS, MAX_INSTANT_MS - 1];
    for (let ms = Date.UTC(2024, 1, 28, 23, 58); ms < Date.UTC(2024, 2, 1, 0, 2); ms += 997) samples.push(ms);
    for (let ms = Date.UTC(2026, 11, 31, 23, 59, 58); ms < Date.UTC(2027, 0, 1, 0, 0, 2); ms += 1) samples.push(ms);
    for (let ms = 0; ms < MAX_INSTANT_MS; ms += 9_876_543_211) samples.push(ms, ms + 1);
    for (const ms of samples) expect(toIso(ms), String(ms)).toBe(new Date(ms).toISOString());
    // Outside 0..9999 and fractions: the Date's own text (extended years), still exact.
    for (const ms of [-1, MAX_INSTANT_MS + 1, 1.5, -62_198_755_200_000])
      expect(toIso(ms)).toBe(new Date(ms).toISOString());
    expect(() => toIso(Number.NaN)).toThrow(RangeError);
  });
});
