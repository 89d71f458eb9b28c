import { describe, expect, it } from 'vitest';
import {
  type Histogram,
  addValue,
  bucketOf,
  countOf,
  mergeHistograms,
  quantile,
  upperBoundOf,
} from '../../domain/projections/histogram.js';

const DAY = 86_400_000;

/** mulberry32: a seeded generator, so a failure replays exactly. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
};

const histogramOf = (values: readonly number[]): Histogram => values.reduce(addValue, []);

/** Given these values, then the histogram says this. */
const given = (values: readonly number[]) => {
  const histogram = histogramOf(values);
  const max = values.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
  return {
    histogram,
    then: (expected: { count: number; p50: number | null; p99: number | null }) =>
      expect({
        count: countOf(histogram),
        p50: quantile(histogram, 0.5, max),
        p99: quantile(histogram, 0.99, max),
      }).toEqual(expected),
  };
};

/** The exact nearest-rank quantile, for n such that q × n is a whole number. */
const exactQuantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.max(1, Math.round(q * sorted.length)) - 1]!;

describe('histogram', () => {
  const random = seeded(20260101);
  const samples = {
    'whole milliseconds, uniform in 0..1000': () => Math.floor(random() * 1001),
    'fractions of a millisecond to 7 days, log-uniform': () =>
      Math.exp(Math.log(0.1) + random() * Math.log(7 * DAY * 10)),
    'mostly zeros and a long tail': () => (random() < 0.6 ? 0 : Math.floor(1 / (random() + 1e-6))),
  };

  for (const [name, draw] of Object.entries(samples)) {
    it(`answers quantiles never below the exact ones and at most 10 % (or under 1 ms) above: ${name}`, () => {
      const values = Array.from({ length: 10_000 }, draw);
      const { histogram } = given(values);
      const sorted = [...values].sort((a, b) => a - b);
      const max = sorted.at(-1)!;
      for (const q of [0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1]) {
        const exact = exactQuantile(sorted, q);
        const answer = quantile(histogram, q, max)!;
        expect(answer).toBeGreaterThanOrEqual(exact);
        expect(answer).toBeLessThanOrEqual(Math.max(Math.ceil(exact), exact * 1.1));
      }
      expect(quantile(histogram, 1, max)).toBe(max);
    });
  }

  it('merging two histograms equals adding all their values to one', () => {
    const values = Array.from({ length: 5_000 }, () => Math.floor(Math.exp(random() * 15)));
    const [left, right] = [values.slice(0, 1_234), values.slice(1_234)];
    const merged = mergeHistograms(histogramOf(left), histogramOf(right));
    expect(merged).toEqual(histogramOf(values));
    expect(mergeHistograms(histogramOf(right), histogramOf(left))).toEqual(merged);
    expect(mergeHistograms(merged, [])).toEqual(merged);
    expect(mergeHistograms([], merged)).toEqual(merged);
  });

  it('holds nothing: a count of 0 and no quantile', () => {
    given([]).then({ count: 0, p50: null, p99: null });
    expect(mergeHistograms([], [])).toEqual([]);
  });

  it('gives 0 ms a bucket of its own', () => {
    given([0, 0, 0]).then({ count: 3, p50: 0, p99: 0 });
    given([0, 0, 0, 7]).then({ count: 4, p50: 0, p99: 7 });
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(0.001)).toBe(1);
  });

  it('is exact for whole milliseconds up to 20, and rounds fractions below 10 ms up to the millisecond', () => {
    given(Array.from({ length: 20 }, (_, i) => i + 1)).then({ count: 20, p50: 10, p99: 20 });
    given([0.3, 2.5]).then({ count: 2, p50: 1, p99: 2.5 });
  });

  it('answers a bucket bound within 10 % above a value, but never above the observed max', () => {
    given([1_000, 1_000, 1_000, 1_000]).then({ count: 4, p50: 1_000, p99: 1_000 });
    const { histogram } = given([1_000, 5_000]);
    expect(quantile(histogram, 0.5, 5_000)).toBe(upperBoundOf(bucketOf(1_000)));
    expect(upperBoundOf(bucketOf(1_000))).toBeGreaterThanOrEqual(1_000);
    expect(upperBoundOf(bucketOf(1_000))).toBeLessThanOrEqual(1_100);
  });

  it('handles huge values: 7 days within 10 %, beyond 2^53 ms answered by the max', () => {
    const week = 7 * DAY;
    given([1, week, week]).then({ count: 3, p50: week, p99: week });
    expect(upperBoundOf(bucketOf(week - 1))).toBeLessThanOrEqual(week * 1.1);
    given([1, 1e300]).then({ count: 2, p50: 1, p99: 1e300 });
    given([Number.MAX_SAFE_INTEGER * 2, Number.MAX_SAFE_INTEGER * 4]).then({
      count: 2,
      p50: Number.MAX_SAFE_INTEGER * 4,
      p99: Number.MAX_SAFE_INTEGER * 4,
    });
  });

  it('has buckets at most 10 % wider than their lower bound, each value in the bucket it bounds', () => {
    for (let bucket = 2; Number.isFinite(upperBoundOf(bucket)); bucket++) {
      const [lower, upper] = [upperBoundOf(bucket - 1), upperBoundOf(bucket)];
      expect(upper).toBeGreaterThan(lower);
      expect(upper).toBeLessThanOrEqual(Math.max(lower + 1, lower * 1.1));
      expect(bucketOf(upper)).toBe(bucket);
      expect(bucketOf((lower + upper) / 2)).toBe(bucket);
    }
    expect(upperBoundOf(bucketOf(7 * DAY))).toBeLessThan(Number.POSITIVE_INFINITY);
  });

  it('leaves the histogram it was given as it was', () => {
    const before = histogramOf([3, 3, 900]);
    const copy = [...before];
    addValue(before, 3);
    addValue(before, 50);
    mergeHistograms(before, before);
    expect(before).toEqual(copy);
  });
});
