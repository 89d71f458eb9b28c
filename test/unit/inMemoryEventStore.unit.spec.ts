import { describe, expect, it } from 'vitest';
import { EsdbEventStore } from '../../src/store/esdb/esdbEventStore.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import { openEventStore } from '../../src/store/openEventStore.js';
import { testEventStore } from '../contract/eventStore.features.js';

testEventStore('in-memory', async () => {
  const store = new InMemoryEventStore();
  return { store, cleanup: () => store.close() };
});

describe('openEventStore', () => {
  it('opens the in-memory store for memory:', async () => {
    const store = await openEventStore('memory:');
    expect(store).toBeInstanceOf(InMemoryEventStore);
    await store.close();
  });

  it.each(['postgres://x', 'kairos.db'])('refuses %s with validation_failed naming the scheme', async (url) => {
    await expect(openEventStore(url)).rejects.toMatchObject({
      code: 'validation_failed',
      message: expect.stringMatching(/sqlite:<path>, esdb:\/\/.*memory:/),
    });
    await expect(openEventStore(url)).rejects.toThrow(url.includes(':') ? `'${url.split(':')[0]}:'` : `'${url}'`);
  });

  it('opens the EventStoreDB adapter for esdb:// (connecting lazily) and refuses a malformed connection string', async () => {
    const store = await openEventStore('esdb://127.0.0.1:1?tls=false');
    expect(store).toBeInstanceOf(EsdbEventStore);
    await store.close();
    await expect(openEventStore('esdb://')).rejects.toMatchObject({ code: 'validation_failed' });
  });
});
