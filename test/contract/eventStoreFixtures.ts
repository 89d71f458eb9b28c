import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach } from 'vitest';
import { firstValueFrom, take, timeout, toArray, type Observable } from 'rxjs';
import type { EventData, EventStore, RecordedEvent } from '../../src/store/eventStore.js';

/** Makes a fresh, empty store for one test, and disposes of it afterwards. */
export type EventStoreFactory = () => Promise<{ store: EventStore; cleanup(): Promise<void> }>;

/** The store of the running test. */
export type StoreContext = { readonly store: EventStore };

/** Registers the per-test store lifecycle in the enclosing describe. */
export const storeContext = (factory: EventStoreFactory): StoreContext => {
  let current: Awaited<ReturnType<EventStoreFactory>> | undefined;
  beforeEach(async () => {
    current = await factory();
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  return {
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
