import { describe, expect, it } from 'vitest';
import { isIllegalStateError, isValidationError, type ValidationError } from '../../domain/errors/index.js';
import type { EventData, EventStore } from '../../src/store/eventStore.js';
import { event, rejectionOf, type StoreContext } from './eventStoreFixtures.js';

const invalid = async (attempt: Promise<unknown>, path: string): Promise<void> => {
  const error = await rejectionOf(attempt);
  expect(isValidationError(error), String(error)).toBe(true);
  expect((error as ValidationError).code).toBe('validation_failed');
  expect((error as ValidationError).issues.map((i) => i.path)).toContain(path);
};

// The adapters are called from JavaScript too (CLI scripts, imports): the type system is no guard.
const untyped = (store: EventStore) =>
  store as unknown as { appendToStream(stream: unknown, events: unknown, options?: unknown): Promise<unknown> };

/**
 * Decisions: stream names are non-empty strings of at most 1024 well-formed characters, not starting
 * with `$` (EventStoreDB's system streams); event ids must be UUIDs (any version) as EventStoreDB
 * requires, compared case-insensitively; data and metadata must be JSON-serialisable.
 */
export const inputFeatures = (ctx: StoreContext): void => {
  describe('bad input', () => {
    it.each<[string, unknown]>([
      ['a number', 42],
      ['undefined', undefined],
      ['an empty string', ''],
      ['a $ system name', '$all'],
      ['a lone surrogate', 'bad\ud800'],
      ['a 1025-character name', 'x'.repeat(1025)],
    ])('refuses %s as stream name, writing nothing', async (_, stream) => {
      await invalid(untyped(ctx.store).appendToStream(stream, [event()]), 'stream');
      expect(await ctx.store.headPosition()).toBe(0n);
    });

    it.each<[string, unknown, string]>([
      ['a non-UUID id', [{ id: 'fire-1', type: 'T', data: {} }], 'events[0].id'],
      ['a missing id', [{ type: 'T', data: {} }], 'events[0].id'],
      ['an empty type', [{ ...event(), type: '' }], 'events[0].type'],
      ['undefined data', [{ id: event().id, type: 'T' }], 'events[0].data'],
      ['bigint data', [event('T', { n: 1n })], 'events[0].data'],
      ['a hole in the events array', Object.assign(new Array<unknown>(2), { 1: event() }), 'events[0]'],
      [
        'circular metadata',
        [
          event(
            'T',
            {},
            (() => {
              const o: Record<string, unknown> = {};
              o.self = o;
              return o;
            })(),
          ),
        ],
        'events[0].metadata',
      ],
      [
        'a repeated id',
        (() => {
          const e = event();
          return [e, { ...e }];
        })(),
        'events[1].id',
      ],
      ['events that are not an array', { id: event().id }, 'events'],
      ['a null event', [null], 'events[0]'],
    ])('refuses %s, writing nothing', async (_, events, path) => {
      await invalid(untyped(ctx.store).appendToStream('s', events), path);
      // A valid event before the bad one is not written either: an append is all or nothing.
      if (Array.isArray(events))
        expect(isValidationError(await rejectionOf(untyped(ctx.store).appendToStream('s', [event(), ...events])))).toBe(
          true,
        );
      expect(await ctx.store.headPosition()).toBe(0n);
    });

    it('refuses a number as expected revision (it must be a bigint)', async () => {
      await invalid(untyped(ctx.store).appendToStream('s', [event()], { expectedRevision: 0 }), 'expectedRevision');
      await invalid(untyped(ctx.store).appendToStream('s', [event()], { expectedRevision: -2n }), 'expectedRevision');
      expect(await ctx.store.headPosition()).toBe(0n);
    });

    it('refuses bad read options', async () => {
      await invalid(ctx.store.readStream('', {}), 'stream');
      await invalid(ctx.store.readStream('s', { maxCount: -1 }), 'maxCount');
      await invalid(ctx.store.readStream('s', { fromRevision: 1 as unknown as bigint }), 'fromRevision');
      await invalid(ctx.store.readAll({ after: -1n }), 'after');
      await invalid(ctx.store.readAll({ partition: { count: 0, index: 0 } }), 'partition.count');
      await invalid(ctx.store.readAll({ partition: { count: 65, index: 0 } }), 'partition.count');
      await invalid(ctx.store.readAll({ partition: { count: 2, index: 2 } }), 'partition.index');
      await invalid(ctx.store.readAll({ partition: { count: 2, index: 0.5 } }), 'partition.index');
      await invalid(ctx.store.readAll({ partition: 'half' as never }), 'partition');
      expect(() => ctx.store.subscribeToAll({ streamPrefixes: [3 as unknown as string] })).toThrow(
        /streamPrefixes\[0\]/,
      );
      expect(() => ctx.store.subscribeToAll({ known: true as unknown as () => boolean })).toThrow(/known/);
    });

    it('accepts ids of any UUID version and an absent metadata', async () => {
      const ids = [
        '6f1c2a9e-4b7d-5e3f-9a81-2c4d6e8f0a1b',
        '0190a3e6-7b5c-7d1e-8f00-0123456789ab',
        '00000000-0000-0000-0000-000000000000',
      ];
      const batch: EventData[] = ids.map((id) => ({ id, type: 'T', data: 1 }));
      await ctx.store.appendToStream('s', batch);
      expect((await ctx.store.readStream('s')).map((e) => e.id)).toEqual(ids);
    });
  });

  describe('close', () => {
    it('is idempotent, and the store refuses work afterwards', async () => {
      await ctx.store.appendToStream('s', [event()]);
      await ctx.store.close();
      await ctx.store.close();
      expect(isIllegalStateError(await rejectionOf(ctx.store.appendToStream('s', [event()])))).toBe(true);
      expect(isIllegalStateError(await rejectionOf(ctx.store.readStream('s')))).toBe(true);
    });

    it('commits appends issued just before it', async () => {
      const pending = ctx.store.appendToStream('s', [event()]);
      await ctx.store.close();
      await expect(pending).resolves.toMatchObject({ nextExpectedRevision: 0n });
    });
  });
};
