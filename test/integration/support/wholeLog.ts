import type { EventStore, RecordedEvent } from '../../../src/store/eventStore.js';

/** Every event of a store's log, in position order, read in pages. */
export const readWholeLog = async (store: EventStore): Promise<RecordedEvent[]> => {
  const all: RecordedEvent[] = [];
  for (;;) {
    const page = await store.readAll({ after: all.at(-1)?.position ?? 0n, maxCount: 5_000 });
    if (page.length === 0) return all;
    all.push(...page);
  }
};
