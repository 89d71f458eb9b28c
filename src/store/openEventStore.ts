import { isAbsolute, resolve } from 'node:path';
import { ErrorCode, KairosError } from '../../domain/errors/index.js';
import { EsdbEventStore, type EsdbEventStoreOptions } from './esdb/esdbEventStore.js';
import type { EventStore } from './eventStore.js';
import { InMemoryEventStore, type InMemoryEventStoreOptions } from './inMemoryEventStore.js';
import { SqliteEventStore, type SqliteEventStoreOptions } from './sqlite/sqliteEventStore.js';

export type OpenEventStoreOptions = {
  sqlite?: SqliteEventStoreOptions;
  memory?: InMemoryEventStoreOptions;
  esdb?: EsdbEventStoreOptions;
  /** Base for relative `sqlite:` paths. @default process.cwd() */
  cwd?: string;
};

/** The file a `sqlite:` store URL names (absolute), or undefined for another scheme. */
export const sqliteFileOf = (url: string, cwd = process.cwd()): string | undefined => {
  if (!url.startsWith('sqlite:')) return undefined;
  // Tolerate the URL spelling `sqlite://` for an absolute path too (`sqlite:///var/x.db`).
  const raw = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  if (raw.length === 0) {
    throw new KairosError(
      ErrorCode.validation,
      "the event store URL 'sqlite:' names no file; write e.g. sqlite:data/kairos.db",
      {
        url,
      },
    );
  }
  return isAbsolute(raw) ? raw : resolve(cwd, raw);
};

/** Whether a store URL names EventStoreDB / KurrentDB (`esdb://`, `esdb+discover://`, `kurrentdb://`, `kdb://`). */
export const isEsdbUrl = (url: string): boolean =>
  /^(esdb|esdb\+discover|kurrentdb|kurrentdb\+discover|kdb|kdb\+discover):\/\//.test(url);

/** The client speaks the same protocol to KurrentDB but only knows the `esdb` schemes. */
export const openEsdbStore = (url: string, options?: EsdbEventStoreOptions): EsdbEventStore =>
  EsdbEventStore.open(url.replace(/^k(urrentdb|db)/, 'esdb'), options);

/**
 * Opens the event store a URL names:
 * - `sqlite:<path>`: the embedded store in that file (relative to `cwd`, or absolute; parent folders
 *   are created), e.g. `sqlite:data/kairos.db`, `sqlite:/var/lib/kairos/events.db`;
 * - `memory:`: the in-memory store, gone when the process ends (tests, demos);
 * - `esdb://host:2113?tls=false` (or `esdb+discover://…`, `kurrentdb://…`): EventStoreDB / KurrentDB,
 *   with the client's connection string (credentials, TLS, cluster discovery).
 */
export const openEventStore = async (url: string, options: OpenEventStoreOptions = {}): Promise<EventStore> => {
  if (typeof url !== 'string') {
    throw new KairosError(ErrorCode.validation, `the event store URL must be a string, got ${typeof url}`, {
      url: String(url),
    });
  }
  if (url.startsWith('memory:')) return new InMemoryEventStore(options.memory);
  if (isEsdbUrl(url)) return openEsdbStore(url, options.esdb);
  const file = sqliteFileOf(url, options.cwd);
  if (file !== undefined) return SqliteEventStore.open(file, options.sqlite);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  throw new KairosError(
    ErrorCode.validation,
    `unsupported event store URL ${scheme === undefined ? `'${url}' (no scheme)` : `scheme '${scheme}:'`}; ` +
      'use sqlite:<path>, esdb://host:2113?tls=false or memory:',
    { url, scheme: scheme ?? null },
  );
};
