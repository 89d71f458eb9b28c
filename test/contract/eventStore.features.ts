import { describe } from 'vitest';
import { appendFeatures } from './eventStore.append.features.js';
import { idempotencyFeatures } from './eventStore.idempotency.features.js';
import { inputFeatures } from './eventStore.input.features.js';
import { longStreamFeatures } from './eventStore.longStream.features.js';
import { readFeatures } from './eventStore.read.features.js';
import { subscribeFeatures } from './eventStore.subscribe.features.js';
import { truncateFeatures } from './eventStore.truncate.features.js';
import { storeContext, type EventStoreFactory, type StoreTraits } from './eventStoreFixtures.js';

export type { EventStoreFactory, StoreTraits } from './eventStoreFixtures.js';

/**
 * The EventStore contract: every adapter's spec calls this with a factory of fresh, empty stores, so
 * all adapters (in-memory, SQLite, EventStoreDB) are held to one set of semantics. Split by concern
 * into the `eventStore.*.features.ts` files, run here under one describe.
 */
export const testEventStore = (name: string, factory: EventStoreFactory, traits?: StoreTraits): void => {
  describe(`EventStore contract: ${name}`, () => {
    const ctx = storeContext(factory, traits);
    appendFeatures(ctx);
    idempotencyFeatures(ctx);
    readFeatures(ctx);
    subscribeFeatures(ctx);
    inputFeatures(ctx);
    truncateFeatures(ctx);
    longStreamFeatures(ctx);
  });
};
