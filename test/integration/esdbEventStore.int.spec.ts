import { EsdbEventStore } from '../../src/store/esdb/esdbEventStore.js';
import { testEventStore } from '../contract/eventStore.features.js';
import { startEsdbStandIn } from '../support/esdbStandIn/index.js';

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
  { duplicateIds: 'eventstoredb' },
);
