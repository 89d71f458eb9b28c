import { existsSync } from 'node:fs';
import type { EventStore } from '../store/eventStore.js';
import { NodeUnreachableError } from './apiClient.js';

/**
 * The node's store, opened by the CLI itself (`kairos events`, `kairos verify`, `kairos replay`): it
 * was named, or no node answers. Opening a SQLite store creates it, so a wrong data directory would read an empty
 * log and leave an empty store behind: the store must already be there.
 */
export const openDirectStore = async (flags: { store?: string; dataDir?: string }): Promise<EventStore> => {
  const [{ compileConfig }, { openEventStore, sqliteFileOf }] = await Promise.all([
    import('../config/config.js'),
    import('../store/openEventStore.js'),
  ]);
  const { store } = compileConfig({ env: process.env, flags: { store: flags.store, dataDir: flags.dataDir } });
  if (store.startsWith('memory:'))
    throw new Error('the store is memory: (it lives only inside its node); pass --store or --data-dir');
  const file = sqliteFileOf(store);
  if (file !== undefined && !existsSync(file))
    throw new Error(`there is no event store at ${file}; pass --data-dir (KAIROS_DATA_DIR) or --store (KAIROS_STORE)`);
  process.stderr.write(`reading ${store}\n`);
  return openEventStore(store);
};

/**
 * Asks the node, or reads the store directly: directly when the command names a store (`--store`,
 * `--data-dir`: the operator means that one, whether a node runs or not), else through the node at
 * KAIROS_URL, falling back to the configured store when no node answers.
 */
export const throughNodeOrStore = async <T>(
  flags: { store?: string; dataDir?: string },
  viaNode: () => Promise<T>,
  viaStore: () => Promise<T>,
): Promise<T> => {
  if (flags.store !== undefined || flags.dataDir !== undefined) return viaStore();
  try {
    return await viaNode();
  } catch (err) {
    if (!(err instanceof NodeUnreachableError)) throw err;
    return viaStore();
  }
};
