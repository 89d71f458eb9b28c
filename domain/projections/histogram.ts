import { z } from 'zod';

/**
 * A log-bucket histogram of latencies in milliseconds, small enough to live in one column of a read
 * model's row: the buckets that hold values, with how many, as one flat JSON-able array. The exact
 * `max` and `sum` are not in it: the model keeps them in columns beside it, and `quantile` takes the
 * max as an argument.
 *
 * Buckets are `(bounds[i − 1], bounds[i]]`, with bucket 0 = `{0}` (values ≤ 0 count there too: a
 * clock stepping back must not vanish). Up to 10 ms every whole millisecond has its own bucket; above,
 * each bound is `floor(1.1 × previous)`, so a bucket is at most 10 % wider than its lower bound. The
 * bounds are whole milliseconds, which keeps quantiles of whole-millisecond data whole and exact
 * up to 20 ms. They reach past `Number.MAX_SAFE_INTEGER` ms (7 days falls in bucket 204 of 379);
 * larger values share the last bucket, answered by the max.
 *
 * **Precision.** A quantile answers the upper bound of the bucket holding the value of that rank,
 * clamped to the observed max. So for the exact nearest-rank quantile `x ≥ 0`, the answer `a`
 * satisfies `x ≤ a ≤ max(ceil(x), 1.1 × x)`: never low, at most 10 % (below 10 ms, under 1 ms) high.
 */

/**
 * `[bucket, count, bucket, count, …]`, buckets ascending, only those with a count. A flat array
 * rather than an object keyed by bucket: V8 copies it (every pure update does) several times faster,
 * where an object with a few far-apart integer keys falls back to slow dictionary elements.
 */
export const Histogram = z.array(z.number());
export type Histogram = z.output<typeof Histogram>;

/** The relative width of a bucket above 10 ms. */
const GROWTH = 1.1;

/** `BOUNDS[i]` is the inclusive upper bound of bucket i (ms); the last bucket has no bound. */
const BOUNDS: readonly number[] = (() => {
  const bounds = [0];
  let bound = 0;
  while (bound < Number.MAX_SAFE_INTEGER) {
    bound = Math.max(bound + 1, Math.floor(bound * GROWTH));
    bounds.push(bound);
  }
  bounds.push(Number.POSITIVE_INFINITY);
  return bounds;
})();

/**
 * The bucket a value falls in. Exposed so a caller adding one value to several histograms (a read
 * model's tiers) finds its bucket once.
 */
export const bucketOf = (valueMs: number): number => {
  if (!(valueMs > 0)) return 0;
  // Binary search for the first bound ≥ the value: ~9 comparisons, exact at every bound.
  let low = 1;
  let high = BOUNDS.length - 1;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (BOUNDS[mid]! < valueMs) low = mid + 1;
    else high = mid;
  }
  return low;
};

/** The inclusive upper bound of a bucket, in ms (Infinity for the last one). */
export const upperBoundOf = (bucket: number): number => BOUNDS[bucket] ?? Number.POSITIVE_INFINITY;

/** `histogram` with one more value in `bucket` (from `bucketOf`); the argument is left as it was. */
export const addToBucket = (histogram: Histogram, bucket: number): Histogram => {
  let i = 0;
  while (i < histogram.length && histogram[i]! < bucket) i += 2;
  if (histogram[i] === bucket) {
    const next = histogram.slice();
    next[i + 1] = histogram[i + 1]! + 1;
    return next;
  }
  const next = histogram.slice(0, i);
  next.push(bucket, 1);
  for (let j = i; j < histogram.length; j++) next.push(histogram[j]!);
  return next;
};

/** `histogram` with one more value; the argument is left as it was. */
export const addValue = (histogram: Histogram, valueMs: number): Histogram => addToBucket(histogram, bucketOf(valueMs));

/** The histogram of both histograms' values together. */
export const mergeHistograms = (a: Histogram, b: Histogram): Histogram => {
  const merged: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const fromA = j >= b.length || (i < a.length && a[i]! <= b[j]!);
    const fromB = i >= a.length || (j < b.length && b[j]! <= a[i]!);
    merged.push(fromA ? a[i]! : b[j]!, (fromA ? a[i + 1]! : 0) + (fromB ? b[j + 1]! : 0));
    if (fromA) i += 2;
    if (fromB) j += 2;
  }
  return merged;
};

/** How many values it holds. */
export const countOf = (histogram: Histogram): number => {
  let count = 0;
  for (let i = 1; i < histogram.length; i += 2) count += histogram[i]!;
  return count;
};

/**
 * The `q`-quantile (0 < q ≤ 1; 0.5 for p50, 0.99 for p99) by nearest rank: the upper bound of the
 * bucket holding the ⌈q·n⌉-th smallest value, clamped to `maxMs`, the exact max of the values kept
 * beside the histogram. Null when it holds nothing.
 */
export const quantile = (histogram: Histogram, q: number, maxMs: number): number | null => {
  const n = countOf(histogram);
  if (n === 0) return null;
  // The epsilon keeps float products such as 0.07 × 100 = 7.000000000000001 on their rank.
  const rank = Math.min(n, Math.max(1, Math.ceil(q * n - 1e-9)));
  let seen = 0;
  // Ends within the array: the counts add up to n ≥ rank.
  for (let i = 0; ; i += 2) {
    seen += histogram[i + 1]!;
    if (seen >= rank) return Math.min(upperBoundOf(histogram[i]!), maxMs);
  }
};
