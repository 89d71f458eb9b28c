import { describe, expect, it } from 'vitest';
import {
  isNotFoundError,
  isValidationError,
  type NotFoundError,
  type ValidationError,
} from '../../domain/errors/index.js';
import { isWrongExpectedVersionError, type EventStore, type RecordedEvent } from '../../src/store/eventStore.js';
import { collect, event, events, rejectionOf, type StoreContext } from './eventStoreFixtures.js';

const revisions = (list: readonly RecordedEvent[]): bigint[] => list.map((e) => e.revision);
const places = (list: readonly RecordedEvent[]): string[] => list.map((e) => `${e.stream}@${e.revision}`);

const invalid = async (attempt: Promise<unknown>, path: string): Promise<void> => {
  const error = await rejectionOf(attempt);
  expect(isValidationError(error), String(error)).toBe(true);
  expect((error as ValidationError).issues.map((i) => i.path)).toEqual([path]);
};

// Called from JavaScript too (imports, scripts): the type system is no guard.
const untyped = (store: EventStore) =>
  store as unknown as {
    truncateBefore(stream: unknown, revision: unknown): Promise<void>;
    startStreamAt(stream: unknown, revision: unknown): Promise<void>;
  };

/**
 * Retention's two store operations: `truncateBefore` (stream reads start at the truncation, the
 * stream's revisions and appends go on as before) and `startStreamAt` (an import restoring a truncated
 * stream at its revisions). `traits.truncation` says what `$all` shows afterwards.
 */
export const truncateFeatures = (ctx: StoreContext): void => {
  describe('truncateBefore', () => {
    it('starts stream reads at the truncation; revisions, the last revision and appends are unchanged', async () => {
      await ctx.store.appendToStream('s', events(6));
      await ctx.store.appendToStream('t', events(2));
      await ctx.store.truncateBefore('s', 3n);
      expect(revisions(await ctx.store.readStream('s'))).toEqual([3n, 4n, 5n]);
      expect(revisions(await ctx.store.readStream('s', { fromRevision: 1n, maxCount: 2 }))).toEqual([3n, 4n]);
      expect(revisions(await ctx.store.readStream('s', { direction: 'backwards' }))).toEqual([5n, 4n, 3n]);
      expect(await ctx.store.readStream('s', { direction: 'backwards', fromRevision: 2n })).toEqual([]);
      expect(await ctx.store.streamRevision('s')).toBe(5n);
      expect(revisions(await ctx.store.readStream('t'))).toEqual([0n, 1n]);

      const stale = await rejectionOf(ctx.store.appendToStream('s', [event()], { expectedRevision: 2n }));
      expect(isWrongExpectedVersionError(stale)).toBe(true);
      const appended = await ctx.store.appendToStream('s', [event()], { expectedRevision: 5n });
      expect(appended.nextExpectedRevision).toBe(6n);
      expect(revisions(await ctx.store.readStream('s'))).toEqual([3n, 4n, 5n, 6n]);
    });

    it('never moves back, and may keep only the last event', async () => {
      await ctx.store.appendToStream('s', events(6));
      await ctx.store.truncateBefore('s', 3n);
      await ctx.store.truncateBefore('s', 1n);
      await ctx.store.truncateBefore('s', 3n);
      expect(revisions(await ctx.store.readStream('s'))).toEqual([3n, 4n, 5n]);
      await ctx.store.truncateBefore('s', 5n);
      expect(revisions(await ctx.store.readStream('s'))).toEqual([5n]);
      expect(await ctx.store.streamRevision('s')).toBe(5n);
    });

    it('leaves $all with the kept events in order; stores that delete leave nothing else', async () => {
      await ctx.store.appendToStream('s', events(4));
      await ctx.store.appendToStream('t', events(1));
      await ctx.store.appendToStream('s', events(1));
      await ctx.store.truncateBefore('s', 2n);
      const all = places(await ctx.store.readAll());
      const live = places(await collect(ctx.store.subscribeToAll(), all.length));
      expect(live).toEqual(all);
      const kept = ['s@2', 's@3', 't@0', 's@4'];
      // EventStoreDB shows truncated events in $all until a scavenge removes them.
      if (ctx.traits.truncation === 'hides') expect(all.filter((p) => kept.includes(p))).toEqual(kept);
      else expect(all).toEqual(kept);
    });

    it('refuses a revision past the last event, a missing stream and bad input, naming the field', async () => {
      await ctx.store.appendToStream('s', events(3));
      await invalid(ctx.store.truncateBefore('s', 3n), 'revision');
      await invalid(ctx.store.truncateBefore('s', -1n), 'revision');
      await invalid(untyped(ctx.store).truncateBefore('s', 1), 'revision');
      await invalid(untyped(ctx.store).truncateBefore('$s', 1n), 'stream');
      await invalid(untyped(ctx.store).truncateBefore(42, 1n), 'stream');
      const missing = await rejectionOf(ctx.store.truncateBefore('nothing', 0n));
      expect(isNotFoundError(missing), String(missing)).toBe(true);
      expect((missing as NotFoundError).details).toEqual({ stream: 'nothing' });
      expect(revisions(await ctx.store.readStream('s'))).toEqual([0n, 1n, 2n]);
    });
  });

  describe('startStreamAt', () => {
    it('starts a stream whose first event lands at the revision given', async () => {
      await ctx.store.startStreamAt('s', 4n);
      expect(await ctx.store.readStream('s')).toEqual([]);
      const fresh = await rejectionOf(ctx.store.appendToStream('s', [event()], { expectedRevision: 'no_stream' }));
      expect(isWrongExpectedVersionError(fresh)).toBe(true);
      const first = await ctx.store.appendToStream('s', events(2), { expectedRevision: 3n });
      expect(first.nextExpectedRevision).toBe(5n);
      expect(revisions(await ctx.store.readStream('s'))).toEqual([4n, 5n]);
      expect(await ctx.store.streamRevision('s')).toBe(5n);
      expect(places(await ctx.store.readAll())).toEqual(['s@4', 's@5']);
    });

    it('refuses a stream that has events, and a revision below 1, naming the field', async () => {
      await ctx.store.appendToStream('s', events(2));
      const exists = await rejectionOf(ctx.store.startStreamAt('s', 5n));
      expect(isWrongExpectedVersionError(exists), String(exists)).toBe(true);
      await invalid(ctx.store.startStreamAt('t', 0n), 'revision');
      await invalid(untyped(ctx.store).startStreamAt('', 3n), 'stream');
      expect(places(await ctx.store.readAll())).toEqual(['s@0', 's@1']);
    });
  });
};
