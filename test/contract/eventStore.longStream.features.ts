import { describe, expect, it } from 'vitest';
import type { ReadStreamOptions } from '../../src/store/eventStore.js';
import { events, type StoreContext } from './eventStoreFixtures.js';

const FROM = [0n, 1n, 62n, 63n, 64n, 65n, 99n, 100n, 127n, 128n, 129n, 150n, 191n, 192n, 199n, 200n, 259n, 300n];
const MAX_COUNT = [1, 2, 63, 64, 65, 130, undefined];

/**
 * A stream far longer than a page of anything an adapter keeps per stream (the SQLite log indexes
 * every 64th revision and walks from there), read from every kind of place — an index point, just
 * before and after one, past the end — in both directions, before and after retention cut its start.
 */
export const longStreamFeatures = (ctx: StoreContext): void => {
  /** Every read of the samples above, checked against the revisions the stream holds. */
  const readsMatch = async (stream: string, kept: readonly bigint[]): Promise<void> => {
    const reads: { options: ReadStreamOptions; expected: bigint[] }[] = [];
    for (const maxCount of MAX_COUNT) {
      const take = (list: bigint[]) => (maxCount === undefined ? list : list.slice(0, maxCount));
      reads.push({ options: { maxCount }, expected: take([...kept]) });
      reads.push({ options: { direction: 'backwards', maxCount }, expected: take([...kept].reverse()) });
      for (const fromRevision of FROM) {
        reads.push({ options: { fromRevision, maxCount }, expected: take(kept.filter((r) => r >= fromRevision)) });
        reads.push({
          options: { direction: 'backwards', fromRevision, maxCount },
          expected: take(kept.filter((r) => r <= fromRevision).reverse()),
        });
      }
    }
    for (const { options, expected } of reads) {
      const got = (await ctx.store.readStream(stream, options)).map((e) => e.revision);
      expect(
        got,
        JSON.stringify(options, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
      ).toEqual(expected);
    }
  };
  const range = (from: number, to: number): bigint[] => Array.from({ length: to - from }, (_, i) => BigInt(from + i));

  describe('a long stream', () => {
    it('reads from any revision in either direction, before and after its start is truncated', async () => {
      // Interleaved with another stream, so the stream's events are not neighbours in the log.
      for (let i = 0; i < 10; i++) {
        await ctx.store.appendToStream('long', events(20));
        await ctx.store.appendToStream('other', events(1));
      }
      await readsMatch('long', range(0, 200));
      await ctx.store.truncateBefore('long', 100n);
      await readsMatch('long', range(100, 200));
      await ctx.store.truncateBefore('long', 128n);
      await readsMatch('long', range(128, 200));
      await ctx.store.appendToStream('long', events(60), { expectedRevision: 199n });
      await readsMatch('long', range(128, 260));
      await ctx.store.truncateBefore('long', 259n);
      await readsMatch('long', [259n]);
      await readsMatch('other', range(0, 10));
    });

    it('reads a stream started past revision 0 the same way', async () => {
      await ctx.store.startStreamAt('late', 100n);
      for (let i = 0; i < 3; i++) {
        await ctx.store.appendToStream('late', events(50));
        await ctx.store.appendToStream('other', events(1));
      }
      await readsMatch('late', range(100, 250));
    });
  });
};
