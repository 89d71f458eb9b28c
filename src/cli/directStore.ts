import { existsSync } from 'node:fs';
import type { EventStore } from '../store/eventStore.js';

/**
 * The node's store, opened by the CLI itself because the node is not reachable (`kairos events`,
 * `kairos verify`). Opening a SQLite store creates it, so a wrong data directory would read an empty
 * log and leave an empty store behind: the store must already be there.
 */
export const openDirectStore = async (flags: { store?: string; dataDir?: string }): Promise<EventStore> => {
  const [{ compileConfig }, { openEventStore, sqliteFileOf }] = await Promise.all([
    import('../config/config.js'),
    import('../store/openEventStore.js'),
  ]);
  const { store } = compileConfig({ env: process.env, flags: { store: flags.store, dataDir: flags.dataDir } });
  if (store.startsWith('memory:'))
    throw new Error(
      'the node is not reachable and its store is memory: (gone with the node); pass --store or --data-dir',
    );
  const file = sqliteFileOf(store);
  if (file !== undefined && !existsSync(file))
    throw new Error(
      `the node is not reachable and there is no event store at ${file}; pass --data-dir (KAIROS_DATA_DIR) or --store (KAIROS_STORE)`,
    );
  process.stderr.write(`node not reachable; reading ${store}\n`);
  return openEventStore(store);
};
