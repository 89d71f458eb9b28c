import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EsdbEventStore } from '../../src/store/esdb/esdbEventStore.js';
import { testEventStore } from '../contract/eventStore.features.js';
import { startEsdbStandIn } from '../support/esdbStandIn/index.js';
import { NamespacedStore } from '../support/namespacedStore.js';
import { until } from './support/waiting.js';

/**
 * The EventStoreDB adapter held to the same contract as the other stores. EventStoreDB cannot run on
 * the build machines, so here the adapter's real client code talks real gRPC to the protocol stand-in
 * (test/support/esdbStandIn: only the calls Kairos makes, EventStoreDB's rules, in memory) — one fresh
 * stand-in per test, so every store starts empty. Against a real server: see README ("EventStoreDB").
 */
testEventStore(
  'EventStoreDB adapter over the gRPC stand-in',
  async () => {
    const standIn = await startEsdbStandIn();
    const store = EsdbEventStore.open(standIn.url, { pageSize: 50 });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await standIn.stop();
      },
    };
  },
  { duplicateIds: 'eventstoredb', truncation: 'hides' },
);

/**
 * The same contract the way it runs against a real server (one database for every test): each test sees
 * its own streams only. Against the stand-in here; against EventStoreDB when KAIROS_TEST_ESDB_URL names one
 * (`docker compose up -d eventstore`, then `KAIROS_TEST_ESDB_URL=esdb://127.0.0.1:2113?tls=false npm test`).
 */
describe('on one shared database', () => {
  const url = process.env['KAIROS_TEST_ESDB_URL'];
  let shared: { store: EsdbEventStore; stop(): Promise<void> } | undefined;
  beforeAll(async () => {
    if (url) shared = { store: EsdbEventStore.open(url), stop: async () => undefined };
    else {
      const standIn = await startEsdbStandIn();
      shared = { store: EsdbEventStore.open(standIn.url, { pageSize: 50 }), stop: () => standIn.stop() };
    }
  });
  afterAll(async () => {
    await shared?.store.close();
    await shared?.stop();
  });
  testEventStore(
    url ? `EventStoreDB at KAIROS_TEST_ESDB_URL (${url})` : 'EventStoreDB adapter, one stand-in shared by every test',
    async () => {
      const store = new NamespacedStore(shared!.store);
      return { store, cleanup: () => store.close() };
    },
    { duplicateIds: 'eventstoredb', truncation: 'hides' },
  );
});

describe('EventStoreDB adapter, a live subscription through a server restart', () => {
  it('renews itself from the last event delivered: no gap, no repeat', async () => {
    const standIn = await startEsdbStandIn();
    const store = EsdbEventStore.open(standIn.url, { resubscribeAfterMs: 50 });
    try {
      const received: string[] = [];
      const failed: unknown[] = [];
      const subscription = store.subscribeToAll().subscribe({
        next: (e) => received.push(`${e.stream}@${e.revision}`),
        error: (err: unknown) => failed.push(err),
      });
      const event = () => ({ id: randomUUID(), type: 'T', data: {} });
      await store.appendToStream('before', [event(), event()]);
      await until(() => received.length === 2, 'the first events');
      await standIn.restart();
      await store.appendToStream('after', [event()]);
      await until(() => received.length === 3, 'the event appended after the restart');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(received).toEqual(['before@0', 'before@1', 'after@0']);
      expect(failed).toEqual([]);
      subscription.unsubscribe();
    } finally {
      await store.close();
      await standIn.stop();
    }
  });
});
