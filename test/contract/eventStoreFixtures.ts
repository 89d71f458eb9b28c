import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach } from 'vitest';
import { firstValueFrom, take, timeout, toArray, type Observable } from 'rxjs';
import type { EventData, EventStore, RecordedEvent } from '../../src/store/eventStore.js';

/** Makes a fresh, empty store for one test, and disposes of it afterwards. */
export type EventStoreFactory = () => Promise<{ store: EventStore; cleanup(): Promise<void> }>;

/**
 * Where adapters may differ, each way documented. `duplicateIds`: `refused` — an append whose ids are
 * stored elsewhere (another stream, another order, only some of them) is a DuplicateEventIdError (the
 * embedded stores index every id); `eventstoredb` — EventStoreDB checks ids only against the place the
 * append would go: ids stored in another stream are written again, a re-append in another order of
 * ids stored at that place is a no-op, and some of them stored there is a WrongExpectedVersionError.
 * Kairos never depends on the difference: its appends name the expected revision they decided at.
 */
export type StoreTraits = {
  duplicateIds: 'refused' | 'eventstoredb';
  /**
   * What `$all` shows after `truncateBefore`: `deletes` (the default) — the truncated events are gone
   * from every read; `hides` — EventStoreDB hides them from stream reads only, `$all` shows them until a
   * scavenge removes them. Kairos' readers of `$all` take either (see docs/architecture.md, retention).
   */
  truncation?: 'deletes' | 'hides';
};

/** The store of the running test, and the adapter's traits. */
export type StoreContext = { readonly store: EventStore; readonly traits: StoreTraits };

/** Registers the per-test store lifecycle in the enclosing describe. */
export const storeContext = (
  factory: EventStoreFactory,
  traits: StoreTraits = { duplicateIds: 'refused' },
): StoreContext => {
  let current: Awaited<ReturnType<EventStoreFactory>> | undefined;
  beforeEach(async () => {
    current = await factory();
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  return {
    traits,
    get store(): EventStore {
      if (!current) throw new Error('no store: used outside a test');
      return current.store;
    },
  };
};

export const event = (type = 'Tested', data: unknown = { n: 1 }, metadata?: unknown): EventData =>
  metadata === undefined ? { id: randomUUID(), type, data } : { id: randomUUID(), type, data, metadata };

export const events = (n: number, type = 'Tested'): EventData[] =>
  Array.from({ length: n }, (_, i) => event(type, { i }));

/** The first `n` events of `source`, or a rejection after `ms`. */
export const collect = (source: Observable<RecordedEvent>, n: number, ms = 5000): Promise<RecordedEvent[]> =>
  firstValueFrom(source.pipe(take(n), toArray(), timeout(ms)));

export const positions = (list: readonly RecordedEvent[]): bigint[] => list.map((e) => e.position);

export const isStrictlyIncreasing = (list: readonly bigint[]): boolean =>
  list.every((p, i) => i === 0 || p > (list[i - 1] as bigint));

/** Lets pending timers, I/O and group commits run. */
export const settle = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The rejection of `promise`, failing the test if it resolves. */
export const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection, but the promise resolved');
};
