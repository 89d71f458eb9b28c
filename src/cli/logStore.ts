import { existsSync } from 'node:fs';
import { ValidationError } from '../../domain/errors/index.js';
import type { EventStore } from '../store/eventStore.js';

export type LogStoreFlags = { store?: string; dataDir?: string };

/**
 * The URL of the log a command reads (`kairos export`, `kairos replay` with the node down) or fills
 * (`kairos import`): `--store`, else the configured one (KAIROS_STORE, else `sqlite:<data
 * dir>/kairos.db`). `memory:` is refused: it dies with this process. A SQLite source must exist, since
 * opening one creates it: a mistyped path would export an empty log.
 */
export const logStoreUrl = async (flags: LogStoreFlags, role: 'source' | 'target'): Promise<string> => {
  const [{ compileConfig }, { sqliteFileOf }] = await Promise.all([
    import('../config/config.js'),
    import('../store/openEventStore.js'),
  ]);
  const { store: url } = compileConfig({ env: process.env, flags: { store: flags.store, dataDir: flags.dataDir } });
  if (url.startsWith('memory:'))
    throw new ValidationError([
      { path: '--store', message: 'memory: holds nothing outside a running node; name a sqlite: or esdb:// store' },
    ]);
  const file = sqliteFileOf(url);
  if (role === 'source' && file !== undefined && !existsSync(file))
    throw new ValidationError([
      {
        path: '--store',
        message: `there is no event store at ${file}; pass --store or --data-dir (KAIROS_STORE, KAIROS_DATA_DIR)`,
      },
    ]);
  return url;
};

/** That store, opened. */
export const openLogStore = async (
  flags: LogStoreFlags,
  role: 'source' | 'target',
): Promise<{ url: string; store: EventStore }> => {
  const url = await logStoreUrl(flags, role);
  const { openEventStore } = await import('../store/openEventStore.js');
  return { url, store: await openEventStore(url) };
};
