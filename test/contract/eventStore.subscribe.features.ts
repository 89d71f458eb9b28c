import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/store/eventStore.js';
import {
  collect,
  event,
  events,
  isStrictlyIncreasing,
  positions,
  settle,
  type StoreContext,
} from './eventStoreFixtures.js';

export const subscribeFeatures = (ctx: StoreContext): void => {
  describe('subscribeToAll', () => {
    it('catches up on stored events, then delivers new ones live, in position order', async () => {
      await ctx.store.appendToStream('a', events(3));
      const received = collect(ctx.store.subscribeToAll(), 6);
      await settle(20);
      await ctx.store.appendToStream('b', events(2));
      await ctx.store.appendToStream('a', [event()]);
      const got = await received;
      expect(got).toEqual(await ctx.store.readAll());
    });

    it('starts strictly after the given position', async () => {
      await ctx.store.appendToStream('a', events(3));
      const { position } = await ctx.store.appendToStream('a', events(2));
      await ctx.store.appendToStream('b', events(2));
      const got = await collect(ctx.store.subscribeToAll({ after: position - 1n }), 3);
      expect(got.map((e) => `${e.stream}@${e.revision}`)).toEqual(['a@4', 'b@0', 'b@1']);
    });

    it('waits when after is the head, and delivers the next append', async () => {
      await ctx.store.appendToStream('a', events(2));
      const received = collect(ctx.store.subscribeToAll({ after: await ctx.store.headPosition() }), 1);
      await settle(20);
      const next = event();
      await ctx.store.appendToStream('a', [next]);
      expect((await received).map((e) => e.id)).toEqual([next.id]);
    });

    it('has no gap and no duplicate when appends land while it is catching up (more than a page)', async () => {
      await ctx.store.appendBatch(Array.from({ length: 25 }, (_, i) => ({ stream: `old-${i}`, events: events(100) })));
      const extra: Promise<unknown>[] = [];
      const seen: RecordedEvent[] = [];
      await new Promise<void>((resolve, reject) => {
        const subscription = ctx.store.subscribeToAll().subscribe({
          next: (e) => {
            seen.push(e);
            // Appends at several points of the catch-up: first event, mid-way, near the end of the backlog.
            if (seen.length === 1 || seen.length === 1200 || seen.length === 2499) {
              for (let i = 0; i < 30; i++)
                extra.push(ctx.store.appendToStream(`new-${seen.length}-${i % 4}`, [event()]));
            }
            if (seen.length === 2500 + 90) {
              subscription.unsubscribe();
              resolve();
            }
          },
          error: reject,
        });
      });
      await Promise.all(extra);
      await settle(20);
      const all = await ctx.store.readAll();
      expect(all).toHaveLength(2590);
      expect(positions(seen)).toEqual(positions(all));
      expect(isStrictlyIncreasing(positions(seen))).toBe(true);
    });

    it('filters by stream prefix, in order, and treats % and _ literally', async () => {
      const received = collect(ctx.store.subscribeToAll({ streamPrefixes: ['kairos-task-', 'a_%'] }), 4);
      await ctx.store.appendToStream('kairos-task-1', [event('T', 1)]);
      await ctx.store.appendToStream('kairos-cluster', [event('T', 2)]);
      await ctx.store.appendToStream('kairos-task.x', [event('T', 3)]);
      await ctx.store.appendToStream('abc', [event('T', 4)]);
      await ctx.store.appendToStream('a_%x', [event('T', 5)]);
      await ctx.store.appendToStream('kairos-tasK-2', [event('T', 6)]);
      await ctx.store.appendToStream('kairos-task-', [event('T', 7)]);
      await ctx.store.appendToStream('kairos-task-2', [event('T', 8)]);
      expect((await received).map((e) => e.data)).toEqual([1, 5, 7, 8]);
    });

    it('passes over the events `known` says the subscriber holds, catch-up and live, and goes on after them', async () => {
      await ctx.store.appendToStream('a', [event('T', 1), event('T', 2)]);
      await ctx.store.appendToStream('b', [event('T', 3)]);
      const asked: string[] = [];
      const positions: bigint[] = [];
      const known = (stream: string, revision: bigint, position: bigint): boolean => {
        asked.push(`${stream}@${revision}`);
        positions.push(position);
        return stream === 'a' && revision <= 2n;
      };
      const received = collect(ctx.store.subscribeToAll({ known }), 2);
      await settle(20);
      // a@2 as the subscriber's own append, a@3 someone else's.
      await ctx.store.appendToStream('a', [event('T', 4)]);
      await ctx.store.appendToStream('a', [event('T', 5)]);
      expect((await received).map((e) => e.data)).toEqual([3, 5]);
      expect(asked).toEqual(['a@0', 'a@1', 'b@0', 'a@2', 'a@3']);
      // With each event's place in the log: a subscriber that skips one has followed the log that far.
      expect(positions).toEqual((await ctx.store.readAll()).map((e) => e.position));
    });

    it('filters by a non-ASCII prefix, catch-up and live', async () => {
      await ctx.store.appendToStream('日本-1', [event('T', 1)]);
      await ctx.store.appendToStream('日本', [event('T', 2)]);
      await ctx.store.appendToStream('日本語', [event('T', 3)]);
      await ctx.store.appendToStream('🕰️-a', [event('T', 4)]);
      const received = collect(ctx.store.subscribeToAll({ streamPrefixes: ['日本-', '🕰️'] }), 3);
      await settle(20);
      await ctx.store.appendToStream('🕰️', [event('T', 5)]);
      expect((await received).map((e) => e.data)).toEqual([1, 4, 5]);
    });

    it('an empty prefix list matches nothing; an empty prefix matches everything', async () => {
      await ctx.store.appendToStream('a', events(2));
      const nothing: RecordedEvent[] = [];
      const subscription = ctx.store.subscribeToAll({ streamPrefixes: [] }).subscribe((e) => nothing.push(e));
      expect(await collect(ctx.store.subscribeToAll({ streamPrefixes: [''] }), 2)).toHaveLength(2);
      await settle(20);
      subscription.unsubscribe();
      expect(nothing).toEqual([]);
    });

    it('delivers nothing after unsubscribe', async () => {
      const seen: RecordedEvent[] = [];
      const subscription = ctx.store.subscribeToAll().subscribe((e) => seen.push(e));
      await ctx.store.appendToStream('a', [event()]);
      await settle(20);
      subscription.unsubscribe();
      await ctx.store.appendToStream('a', [event()]);
      await settle(100);
      expect(seen).toHaveLength(1);
    });

    it('serves several subscribers, each in order, also when one appends from inside next', async () => {
      const a = collect(ctx.store.subscribeToAll(), 4);
      const b: RecordedEvent[] = [];
      const reentrant = ctx.store.subscribeToAll().subscribe((e) => {
        b.push(e);
        if (e.type === 'First') void ctx.store.appendToStream('reaction', [event('Reaction')]);
      });
      await settle(5);
      await ctx.store.appendToStream('s', [event('First'), event('Second')]);
      await ctx.store.appendToStream('s', [event('Third')]);
      const got = await a;
      await settle(20);
      reentrant.unsubscribe();
      expect(isStrictlyIncreasing(positions(got))).toBe(true);
      expect(positions(b)).toEqual(positions(got));
      expect(got.map((e) => e.type).sort()).toEqual(['First', 'Reaction', 'Second', 'Third']);
    });

    it('completes when the store closes', async () => {
      let completed = false;
      ctx.store.subscribeToAll().subscribe({ complete: () => (completed = true) });
      await settle(5);
      await ctx.store.close();
      expect(completed).toBe(true);
    });
  });
};
