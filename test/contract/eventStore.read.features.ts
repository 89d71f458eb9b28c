import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/store/eventStore.js';
import { event, events, isStrictlyIncreasing, positions, type StoreContext } from './eventStoreFixtures.js';

const revisions = (list: readonly { revision: bigint }[]): bigint[] => list.map((e) => e.revision);

export const readFeatures = (ctx: StoreContext): void => {
  describe('readStream', () => {
    it('of a missing stream is empty', async () => {
      expect(await ctx.store.readStream('missing')).toEqual([]);
      expect(await ctx.store.readStream('missing', { direction: 'backwards' })).toEqual([]);
      expect(await ctx.store.streamRevision('missing')).toBeUndefined();
    });

    it('returns the recorded events with every field', async () => {
      const before = Date.now();
      const e = event('TaskCreated', { name: 'n' }, { who: 'u' });
      const { position } = await ctx.store.appendToStream('s', [e]);
      const [read] = await ctx.store.readStream('s');
      expect(read).toEqual({
        id: e.id,
        stream: 's',
        revision: 0n,
        position,
        type: 'TaskCreated',
        data: { name: 'n' },
        metadata: { who: 'u' },
        time: expect.any(Date),
      });
      expect(read?.time.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(read?.time.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    });

    it('reads only its own stream, forwards in revision order', async () => {
      for (let i = 0; i < 4; i++) {
        await ctx.store.appendToStream('s', [event('T', { i })]);
        await ctx.store.appendToStream('s-2', [event()]);
        await ctx.store.appendToStream('t', [event()]);
      }
      const read = await ctx.store.readStream('s');
      expect(read.map((e) => e.stream)).toEqual(['s', 's', 's', 's']);
      expect(read.map((e) => e.data)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }]);
      expect(isStrictlyIncreasing(positions(read))).toBe(true);
    });

    it('forwards from a revision, with maxCount', async () => {
      await ctx.store.appendToStream('s', events(5));
      expect(revisions(await ctx.store.readStream('s', { fromRevision: 2n }))).toEqual([2n, 3n, 4n]);
      expect(revisions(await ctx.store.readStream('s', { fromRevision: 1n, maxCount: 2 }))).toEqual([1n, 2n]);
      expect(await ctx.store.readStream('s', { fromRevision: 5n })).toEqual([]);
      expect(await ctx.store.readStream('s', { maxCount: 0 })).toEqual([]);
    });

    it('backwards from the end or from a revision, with maxCount', async () => {
      await ctx.store.appendToStream('s', events(5));
      expect(revisions(await ctx.store.readStream('s', { direction: 'backwards' }))).toEqual([4n, 3n, 2n, 1n, 0n]);
      expect(revisions(await ctx.store.readStream('s', { direction: 'backwards', maxCount: 1 }))).toEqual([4n]);
      expect(revisions(await ctx.store.readStream('s', { direction: 'backwards', fromRevision: 2n }))).toEqual([
        2n,
        1n,
        0n,
      ]);
      expect(
        revisions(await ctx.store.readStream('s', { direction: 'backwards', fromRevision: 99n, maxCount: 2 })),
      ).toEqual([4n, 3n]);
    });

    it('streamRevision is the last revision', async () => {
      await ctx.store.appendToStream('s', events(3));
      expect(await ctx.store.streamRevision('s')).toBe(2n);
    });
  });

  describe('readAll and headPosition', () => {
    it('an empty store has head 0n and no events', async () => {
      expect(await ctx.store.headPosition()).toBe(0n);
      expect(await ctx.store.readAll()).toEqual([]);
    });

    it('reads every stream in position order; head is the last position', async () => {
      await ctx.store.appendToStream('a', events(2));
      await ctx.store.appendToStream('b', [event()]);
      const last = await ctx.store.appendToStream('a', [event()]);
      const all = await ctx.store.readAll();
      expect(all.map((e) => `${e.stream}@${e.revision}`)).toEqual(['a@0', 'a@1', 'b@0', 'a@2']);
      expect(isStrictlyIncreasing(positions(all))).toBe(true);
      expect(await ctx.store.headPosition()).toBe(last.position);
    });

    it('pages with after and maxCount through the whole log', async () => {
      for (let i = 0; i < 7; i++) await ctx.store.appendToStream(`s-${i % 3}`, events(3));
      const all = await ctx.store.readAll();
      const paged = [];
      let after = 0n;
      for (;;) {
        const page = await ctx.store.readAll({ after, maxCount: 4 });
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(4);
        paged.push(...page);
        after = page[page.length - 1]?.position as bigint;
      }
      expect(paged).toEqual(all);
      expect(await ctx.store.readAll({ after: await ctx.store.headPosition() })).toEqual([]);
    });

    it('a partition is every event of its streams, in position order; the parts split the log between them', async () => {
      // Names as users give them: a shared prefix, one character apart, short, unicode, one character.
      const streams = ['job-1', 'job-2', 'job-3', 'job-17', 'job-18', 'ä', 'x', 'stream-€-𝄞', 'backup-nightly'];
      for (let i = 0; i < 30; i++) await ctx.store.appendToStream(streams[i % streams.length] as string, events(2));
      const all = await ctx.store.readAll();
      for (const count of [1, 2, 3]) {
        const parts: RecordedEvent[][] = [];
        for (let index = 0; index < count; index++) {
          const part: RecordedEvent[] = [];
          let after = 0n;
          for (;;) {
            const page = await ctx.store.readAll({ after, maxCount: 5, partition: { count, index } });
            part.push(...page);
            if (page.length < 5) break;
            after = page[page.length - 1]?.position as bigint;
          }
          expect(await ctx.store.readAll({ partition: { count, index } })).toEqual(part);
          parts.push(part);
        }
        // Disjoint and complete: together, the whole log.
        expect(parts.flat().sort((a, b) => Number(a.position - b.position))).toEqual(all);
      }
      // A stream's events never straddle two parts, and both parts of two have some here (the part a
      // stream falls in is the adapter's: SQLite computes it in the read).
      const halves = await Promise.all([0, 1].map((index) => ctx.store.readAll({ partition: { count: 2, index } })));
      expect(halves.every((half) => half.length > 0)).toBe(true);
      const first = new Set(halves[0]?.map((e) => e.stream));
      expect(halves[1]?.filter((e) => first.has(e.stream))).toEqual([]);
    });
  });

  describe('data and metadata', () => {
    it('round-trip through JSON: nested, unicode, null, arrays, numbers', async () => {
      const data = {
        text: 'Zürich — 東京 — القاهرة — 🕰️ — "quotes" \\ back\nslash \u0000 nul',
        nested: { deep: { deeper: [1, 2.5, -3e-7, { x: null }] } },
        empty: {},
        none: null,
        flag: false,
        big: Number.MAX_SAFE_INTEGER,
      };
      const e1 = event('A', data, { correlationId: 'c-1', causationId: null, who: { user: 'ä' } });
      const e2 = event('B', null, null);
      const e3 = event('C', ['x', 1, true]);
      const e4 = event('D', 'just a string');
      await ctx.store.appendToStream('s', [e1, e2, e3, e4]);
      const read = await ctx.store.readStream('s');
      expect(read.map((e) => [e.type, e.data, e.metadata])).toEqual([
        ['A', data, { correlationId: 'c-1', causationId: null, who: { user: 'ä' } }],
        ['B', null, null],
        ['C', ['x', 1, true], undefined],
        ['D', 'just a string', undefined],
      ]);
      expect(await ctx.store.readAll()).toEqual(read);
    });

    it('stores a copy: mutating the appended or the read object changes nothing stored', async () => {
      const data = { list: [1] };
      await ctx.store.appendToStream('s', [event('T', data)]);
      data.list.push(2);
      const [first] = await ctx.store.readStream('s');
      (first?.data as { list: number[] }).list.push(3);
      expect((await ctx.store.readStream('s'))[0]?.data).toEqual({ list: [1] });
    });

    it('keeps what JSON keeps: undefined properties vanish, dates become strings', async () => {
      await ctx.store.appendToStream('s', [event('T', { gone: undefined, at: new Date(0) })]);
      expect((await ctx.store.readStream('s'))[0]?.data).toEqual({ at: '1970-01-01T00:00:00.000Z' });
    });
  });
};
