import type Database from 'better-sqlite3';
import { ErrorCode, KairosError } from '../../../domain/errors/index.js';

/** The schema this code reads and writes; `PRAGMA user_version` records it in the file. */
export const SCHEMA_VERSION = 2;

/** Every `ANCHOR_EVERY`-th revision of a stream is indexed by (stream, revision); see `DDL`. */
export const ANCHOR_EVERY = 64;

/**
 * `events` is the log. `position` is the rowid: AUTOINCREMENT so a position is never reused, and since
 * every write runs under BEGIN IMMEDIATE (one writer at a time, across processes) positions grow in
 * commit order. `streams` holds each stream's head so expected-revision checks are one key lookup.
 * Times are epoch milliseconds; data and metadata are JSON text (metadata NULL when absent).
 *
 * A stream's events are found through `previous` (the position of the stream's event before, 0 for
 * its first; NOT NULL, so a Kairos of schema 1 still writing to the file fails instead of breaking
 * chains) from its head, and through `events_stream_anchor`, which indexes only every 64th revision
 * so a read from the middle starts at most 63 steps away. A full (stream, revision) index took a random
 * page per append once each of 10,000 streams had its own leaf: at 10,000 fires/s that was most of the
 * WAL and every checkpoint's random writes, which queued the next commit's fsync (docs/architecture.md,
 * "A stream's events are a chain"). Revisions stay unique: appends take the head from `streams` under
 * the write lock, and the anchor index refuses a duplicate anchor.
 */
const EVENTS_V2 = `
CREATE TABLE IF NOT EXISTS events (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  id       TEXT    NOT NULL UNIQUE,
  stream   TEXT    NOT NULL,
  revision INTEGER NOT NULL,
  previous INTEGER NOT NULL,
  type     TEXT    NOT NULL,
  data     TEXT    NOT NULL,
  metadata TEXT,
  time     INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_stream_anchor ON events (stream, revision) WHERE revision % ${ANCHOR_EVERY} = 0;
`;
// `log_meta.truncations` counts truncations by any process: a store drops the rows it keeps in memory
// for its subscribers when it changes (recentRows.ts).
const DDL = `${EVENTS_V2}
CREATE TABLE IF NOT EXISTS log_meta (
  key   TEXT    PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS streams (
  stream   TEXT    PRIMARY KEY,
  revision INTEGER NOT NULL,
  position INTEGER NOT NULL
) WITHOUT ROWID;
`;

/**
 * Version 1 indexed every (stream, revision) and had no `previous`: the table is copied with each
 * event's predecessor in its stream, keeping positions and the AUTOINCREMENT counter, so no position
 * is ever handed out twice. Once, at the first open by this version; a large log takes a while, and
 * another process opening the file meanwhile gives up after OPEN_BUSY_TIMEOUT_MS.
 */
const fromVersion1 = (db: Database.Database): void => {
  const counter = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").pluck().get() as
    bigint | number | undefined;
  db.exec(`ALTER TABLE events RENAME TO events_v1;`);
  db.exec(EVENTS_V2);
  // In position order, each predecessor found through version 1's (stream, revision) index: no sort of
  // the whole table, as a window function over (stream, revision) needed.
  db.exec(`
    INSERT INTO events (position, id, stream, revision, previous, type, data, metadata, time)
      SELECT e.position, e.id, e.stream, e.revision,
             coalesce((SELECT p.position FROM events_v1 p WHERE p.stream = e.stream AND p.revision = e.revision - 1), 0),
             e.type, e.data, e.metadata, e.time
      FROM events_v1 e ORDER BY e.position;
    DROP TABLE events_v1;
  `);
  if (counter !== undefined) {
    db.prepare("DELETE FROM sqlite_sequence WHERE name = 'events'").run();
    db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)").run(counter);
  }
};

export type Synchronous = 'FULL' | 'NORMAL';

export type ConnectionSettings = { busyTimeoutMs: number; synchronous: Synchronous };

// Opening is synchronous and happens once, so it may wait long for another process's lock (switching
// to WAL, creating the schema); operations afterwards wait only `busyTimeoutMs` inside SQLite.
const OPEN_BUSY_TIMEOUT_MS = 5000;

/** How long one SQLite call waits for a lock, blocking the thread, before it reports SQLITE_BUSY. */
export const setBusyTimeout = (db: Database.Database, ms: number): void => {
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(ms))}`);
};

/** Connection settings; they hold per connection, so each process applies them when it opens the file. */
export const configure = (db: Database.Database, settings: ConnectionSettings): void => {
  // First, so that everything after it (including switching to WAL) waits for other processes' locks.
  setBusyTimeout(db, Math.max(OPEN_BUSY_TIMEOUT_MS, settings.busyTimeoutMs));
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (String(mode).toLowerCase() !== 'wal') {
    // Without WAL, readers block the writer and polling other processes' commits would stall appends.
    throw new KairosError(
      ErrorCode.unavailable,
      `SQLite refused WAL journal mode (got '${String(mode)}'); is the file on a network share?`,
    );
  }
  // Event ids not made by Kairos are random keys: such an append touches a random index page. A 64 MiB
  // page cache and checkpoints every ~40 MB of WAL (instead of 4 MB) roughly double append throughput
  // on a log of a few hundred thousand events (measured with group commits of 1,000 appends).
  db.pragma('cache_size = -65536');
  db.pragma('wal_autocheckpoint = 10000');
  db.pragma(`synchronous = ${settings.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
  // Positions and revisions are 64-bit: read them as bigint, never as lossy doubles.
  db.defaultSafeIntegers(true);
};

/**
 * For a writer whose WAL another thread checkpoints (checkpointWorker.ts): its own automatic
 * checkpoint only as a backstop, at ~400 MB of WAL, should that thread stop.
 */
export const checkpointOnlyAsBackstop = (db: Database.Database): void => {
  db.pragma('wal_autocheckpoint = 100000');
};

/** Creates or checks the schema, in a write transaction so two processes opening a new file do not race. */
export const migrate = (db: Database.Database): void => {
  const converted = db
    .transaction((): boolean => {
      const version = Number(db.pragma('user_version', { simple: true }));
      if (version > SCHEMA_VERSION) {
        throw new KairosError(
          ErrorCode.illegalState,
          `the event store file has schema version ${version}, newer than this Kairos understands (${SCHEMA_VERSION}); upgrade Kairos`,
          { version, supported: SCHEMA_VERSION },
        );
      }
      if (version === SCHEMA_VERSION) return false;
      if (version === 1) fromVersion1(db);
      db.exec(DDL);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return version === 1;
    })
    .immediate();
  // The conversion wrote a copy of the whole log to the WAL: fold it into the file and give the space back.
  if (converted) db.pragma('wal_checkpoint(TRUNCATE)');
};
