import { describe, expect, it } from 'vitest';
import { isKairosError } from '../../domain/errors/index.js';
import {
  isWrongExpectedVersionError,
  type ExpectedRevision,
  type WrongExpectedVersionError,
} from '../../src/store/eventStore.js';
import {
  event,
  events,
  isStrictlyIncreasing,
  positions,
  rejectionOf,
  type StoreContext,
} from './eventStoreFixtures.js';

const wrongVersion = async (promise: Promise<unknown>): Promise<WrongExpectedVersionError> => {
  const error = await rejectionOf(promise);
  expect(isWrongExpectedVersionError(error)).toBe(true);
  return error as WrongExpectedVersionError;
};

export const appendFeatures = (ctx: StoreContext): void => {
  describe('appendToStream and expected revisions', () => {
    it("creates a stream with 'any' (the default), revisions from 0", async () => {
      const one = await ctx.store.appendToStream('s', [event()]);
      expect(one.nextExpectedRevision).toBe(0n);
      const two = await ctx.store.appendToStream('s', events(3));
      expect(two.nextExpectedRevision).toBe(3n);
      expect((await ctx.store.readStream('s')).map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n]);
    });

    it('returns the position of the last event appended', async () => {
      const result = await ctx.store.appendToStream('s', events(3));
      const stored = await ctx.store.readStream('s');
      expect(result.position).toBe(stored[2]?.position);
      expect(await ctx.store.headPosition()).toBe(result.position);
    });

    it("accepts 'no_stream' for a new stream and refuses it for an existing one, naming the actual revision", async () => {
      await ctx.store.appendToStream('s', events(2), { expectedRevision: 'no_stream' });
      const error = await wrongVersion(ctx.store.appendToStream('s', [event()], { expectedRevision: 'no_stream' }));
      expect(error.actual).toBe(1n);
      expect(error.expected).toBe('no_stream');
      expect(error.stream).toBe('s');
    });

    it("accepts 'stream_exists' for an existing stream and refuses it for a missing one (actual undefined)", async () => {
      await ctx.store.appendToStream('s', [event()]);
      await expect(
        ctx.store.appendToStream('s', [event()], { expectedRevision: 'stream_exists' }),
      ).resolves.toMatchObject({ nextExpectedRevision: 1n });
      const error = await wrongVersion(
        ctx.store.appendToStream('missing', [event()], { expectedRevision: 'stream_exists' }),
      );
      expect(error.actual).toBeUndefined();
    });

    it('accepts the exact last revision', async () => {
      const first = await ctx.store.appendToStream('s', events(2));
      const next = await ctx.store.appendToStream('s', [event()], { expectedRevision: first.nextExpectedRevision });
      expect(next.nextExpectedRevision).toBe(2n);
    });

    it.each<[string, bigint]>([
      ['stale', 0n],
      ['ahead', 5n],
    ])('refuses a %s revision and reports the actual one', async (_, expected) => {
      await ctx.store.appendToStream('s', events(2));
      const error = await wrongVersion(ctx.store.appendToStream('s', [event()], { expectedRevision: expected }));
      expect(error.actual).toBe(1n);
      expect(error.expected).toBe(expected);
      expect(error.code).toBe('wrong_expected_version');
    });

    it('refuses a revision for a missing stream, with actual undefined', async () => {
      const error = await wrongVersion(ctx.store.appendToStream('missing', [event()], { expectedRevision: 0n }));
      expect(error.actual).toBeUndefined();
      expect(error.toJSON()).toMatchObject({ code: 'wrong_expected_version', details: { actual: null } });
    });

    it('treats -1n as no_stream (what an empty append to a missing stream returns)', async () => {
      await ctx.store.appendToStream('s', [event()], { expectedRevision: -1n });
      await wrongVersion(ctx.store.appendToStream('s', [event()], { expectedRevision: -1n }));
    });

    it('writes nothing when the expected revision is wrong', async () => {
      await ctx.store.appendToStream('s', [event()]);
      const head = await ctx.store.headPosition();
      await wrongVersion(ctx.store.appendToStream('s', events(3), { expectedRevision: 7n }));
      expect(await ctx.store.headPosition()).toBe(head);
      expect(await ctx.store.readStream('s')).toHaveLength(1);
      expect(await ctx.store.streamRevision('s')).toBe(0n);
    });

    it.each<[ExpectedRevision, boolean]>([
      ['any', true],
      ['no_stream', true],
      ['stream_exists', false],
      [0n, false],
    ])(
      'empty append to a missing stream with %s: ok=%s, and the stream still does not exist',
      async (expectedRevision, ok) => {
        const attempt = ctx.store.appendToStream('missing', [], { expectedRevision });
        if (ok) await expect(attempt).resolves.toEqual({ nextExpectedRevision: -1n, position: 0n });
        else await wrongVersion(attempt);
        expect(await ctx.store.streamRevision('missing')).toBeUndefined();
        expect(await ctx.store.headPosition()).toBe(0n);
      },
    );

    it('empty append to an existing stream checks the revision and returns where the stream is', async () => {
      const written = await ctx.store.appendToStream('s', events(2));
      await ctx.store.appendToStream('other', [event()]);
      await expect(ctx.store.appendToStream('s', [], { expectedRevision: 1n })).resolves.toEqual(written);
      await wrongVersion(ctx.store.appendToStream('s', [], { expectedRevision: 0n }));
      expect(await ctx.store.readStream('s')).toHaveLength(2);
    });
  });

  describe('appendBatch', () => {
    it('resolves each append on its own: failures do not fail the others', async () => {
      const taken = event();
      await ctx.store.appendToStream('existing', [taken]);
      const results = await ctx.store.appendBatch([
        { stream: 'a', events: [event()], expectedRevision: 'no_stream' },
        { stream: 'existing', events: [event()], expectedRevision: 'no_stream' },
        { stream: 'b', events: events(2) },
        { stream: 'c', events: [event(), taken] },
        { stream: '', events: [event()] },
        { stream: 'existing', events: [event()], expectedRevision: 0n },
      ]);
      // Stream 'c' reuses an id stored in 'existing': refused, or written again by EventStoreDB.
      const refused = ctx.traits.duplicateIds === 'refused';
      expect(results.map((r) => r.ok)).toEqual([true, false, true, !refused, false, true]);
      expect(results[1]?.ok === false && isWrongExpectedVersionError(results[1].error)).toBe(true);
      if (refused)
        expect(results[3]?.ok === false && isKairosError(results[3].error) && results[3].error.code).toBe(
          'already_exists',
        );
      expect(results[4]?.ok === false && isKairosError(results[4].error) && results[4].error.code).toBe(
        'validation_failed',
      );
      expect(await ctx.store.readStream('a')).toHaveLength(1);
      expect(await ctx.store.readStream('b')).toHaveLength(2);
      expect(await ctx.store.readStream('c')).toHaveLength(refused ? 0 : 2);
      expect(await ctx.store.streamRevision('existing')).toBe(1n);
    });

    it('applies appends in order, so a later one sees an earlier one of the same batch', async () => {
      const results = await ctx.store.appendBatch([
        { stream: 's', events: [event()], expectedRevision: 'no_stream' },
        { stream: 's', events: [event()], expectedRevision: 0n },
        { stream: 's', events: [event()], expectedRevision: 0n },
      ]);
      expect(results.map((r) => r.ok)).toEqual([true, true, false]);
      const third = results[2];
      expect(third?.ok === false && isWrongExpectedVersionError(third.error) && third.error.actual).toBe(1n);
    });

    it('returns one result per append, positions increasing in batch order', async () => {
      expect(await ctx.store.appendBatch([])).toEqual([]);
      const results = await ctx.store.appendBatch([
        { stream: 'x', events: events(2) },
        { stream: 'y', events: [event()] },
      ]);
      const [x, y] = results.map((r) => (r.ok ? r.result.position : -1n));
      expect(y).toBeGreaterThan(x as bigint);
    });
  });

  describe('global positions', () => {
    it('are unique and strictly increasing across streams, also for concurrent appends', async () => {
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => ctx.store.appendToStream(`s-${i % 7}`, events(1 + (i % 3)))),
      );
      const all = await ctx.store.readAll();
      expect(all).toHaveLength(60 + 60);
      expect(isStrictlyIncreasing(positions(all))).toBe(true);
      const resultPositions = new Set(results.map((r) => r.position));
      expect(resultPositions.size).toBe(60);
      for (let s = 0; s < 7; s++) {
        const stream = await ctx.store.readStream(`s-${s}`);
        expect(stream.map((e) => e.revision)).toEqual(stream.map((_, i) => BigInt(i)));
        expect(isStrictlyIncreasing(positions(stream))).toBe(true);
      }
    });

    it('start above 0, so 0n means before the first event', async () => {
      expect(await ctx.store.headPosition()).toBe(0n);
      const { position } = await ctx.store.appendToStream('s', [event()]);
      expect(position).toBeGreaterThan(0n);
    });
  });
};
