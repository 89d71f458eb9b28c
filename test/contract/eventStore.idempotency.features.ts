import { describe, expect, it } from 'vitest';
import { isDuplicateEventIdError, isWrongExpectedVersionError } from '../../src/store/eventStore.js';
import { event, events, rejectionOf, type StoreContext } from './eventStoreFixtures.js';

/** Re-appending ids already stored: the retry of an append whose answer was lost must be harmless. */
export const idempotencyFeatures = (ctx: StoreContext): void => {
  describe('idempotent re-append', () => {
    it('re-appending the same event at the same expected revision is a no-op with the same result', async () => {
      await ctx.store.appendToStream('s', [event()]);
      const fired = event('TaskFired');
      const first = await ctx.store.appendToStream('s', [fired], { expectedRevision: 0n });
      const again = await ctx.store.appendToStream('s', [fired], { expectedRevision: 0n });
      expect(again).toEqual(first);
      expect(await ctx.store.readStream('s')).toHaveLength(2);
      expect(await ctx.store.headPosition()).toBe(first.position);
    });

    it.each(['any', 'stream_exists', 'no_stream'] as const)(
      'a whole batch re-appended with %s is a no-op',
      async (expectedRevision) => {
        const batch = events(3);
        const first = await ctx.store.appendToStream('s', batch);
        await expect(ctx.store.appendToStream('s', batch, { expectedRevision })).resolves.toEqual(first);
        expect(await ctx.store.readStream('s')).toHaveLength(3);
      },
    );

    it('returns the stored revision and position even after the stream moved on', async () => {
      const batch = events(2);
      const first = await ctx.store.appendToStream('s', batch, { expectedRevision: 'no_stream' });
      await ctx.store.appendToStream('s', events(3));
      await expect(ctx.store.appendToStream('s', batch, { expectedRevision: 'no_stream' })).resolves.toEqual(first);
      expect(await ctx.store.streamRevision('s')).toBe(4n);
    });

    it('a re-append whose expected revision does not fit where the events are stored is a WrongExpectedVersionError', async () => {
      await ctx.store.appendToStream('s', events(2));
      const batch = events(2);
      await ctx.store.appendToStream('s', batch, { expectedRevision: 1n });
      const error = await rejectionOf(ctx.store.appendToStream('s', batch, { expectedRevision: 0n }));
      expect(isWrongExpectedVersionError(error)).toBe(true);
      expect(isWrongExpectedVersionError(error) && error.actual).toBe(3n);
    });

    it('only some of the ids stored: refused, nothing written', async () => {
      const [a, b] = events(2) as [ReturnType<typeof event>, ReturnType<typeof event>];
      await ctx.store.appendToStream('s', [a, b]);
      const error = await rejectionOf(ctx.store.appendToStream('s', [b, event()]));
      if (ctx.traits.duplicateIds === 'refused') {
        expect(isDuplicateEventIdError(error)).toBe(true);
        expect(isDuplicateEventIdError(error) && error.code).toBe('already_exists');
      } else expect(isWrongExpectedVersionError(error)).toBe(true);
      expect(await ctx.store.readStream('s')).toHaveLength(2);
    });

    it('ids stored in another stream: refused (embedded) or written again (EventStoreDB)', async () => {
      const shared = event();
      await ctx.store.appendToStream('one', [shared]);
      if (ctx.traits.duplicateIds === 'refused') {
        expect(isDuplicateEventIdError(await rejectionOf(ctx.store.appendToStream('two', [shared])))).toBe(true);
        expect(await ctx.store.streamRevision('two')).toBeUndefined();
      } else {
        await ctx.store.appendToStream('two', [shared]);
        expect((await ctx.store.readStream('two')).map((e) => e.id)).toEqual([shared.id]);
      }
    });

    it('the same ids in another order: refused (embedded) or a no-op (EventStoreDB)', async () => {
      const [a, b] = events(2) as [ReturnType<typeof event>, ReturnType<typeof event>];
      await ctx.store.appendToStream('s', [a, b]);
      if (ctx.traits.duplicateIds === 'refused')
        expect(isDuplicateEventIdError(await rejectionOf(ctx.store.appendToStream('s', [b, a])))).toBe(true);
      else await ctx.store.appendToStream('s', [b, a]);
      expect((await ctx.store.readStream('s')).map((e) => e.id)).toEqual([a.id, b.id]);
    });

    it('a subset of a stored batch (not the whole append): still a no-op when all its ids are in place', async () => {
      const batch = events(3);
      const first = await ctx.store.appendToStream('s', batch);
      const tail = await ctx.store.appendToStream('s', batch.slice(1), { expectedRevision: 0n });
      expect(tail).toEqual(first);
    });

    it('ids compare case-insensitively and read back lower-case', async () => {
      const e = event();
      const upper = { ...e, id: e.id.toUpperCase() };
      const first = await ctx.store.appendToStream('s', [upper]);
      await expect(ctx.store.appendToStream('s', [e])).resolves.toEqual(first);
      expect((await ctx.store.readStream('s'))[0]?.id).toBe(e.id.toLowerCase());
    });

    it('concurrent identical appends store the events once', async () => {
      const batch = events(2);
      const results = await Promise.allSettled([
        ctx.store.appendToStream('s', batch, { expectedRevision: 'no_stream' }),
        ctx.store.appendToStream('s', batch, { expectedRevision: 'no_stream' }),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
      expect(await ctx.store.readStream('s')).toHaveLength(2);
    });
  });
};
