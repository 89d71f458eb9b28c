import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isKairosError } from '../../domain/errors/index.js';
import type { RecordedEvent } from '../../src/store/eventStore.js';
import { openEventStore } from '../../src/store/openEventStore.js';
import { SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';
import { testEventStore } from '../contract/eventStore.features.js';
import {
  collect,
  event,
  events,
  isStrictlyIncreasing,
  positions,
  rejectionOf,
  settle,
} from '../contract/eventStoreFixtures.js';
import { startWorker } from './sqliteWorkers.js';

// Both write paths are held to the contract: the writer thread (the default) and the inline one.
for (const mode of ['thread', 'inline'] as const) {
  testEventStore(`sqlite (${mode} writer)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kairos-contract-'));
    const store = SqliteEventStore.open(join(dir, 'events.db'), { writer: mode });
    return {
      store,
      cleanup: async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });

  describe(`SqliteEventStore (${mode} writer)`, () => {
    let dir: string;
    let file: string;
    const open: SqliteEventStore[] = [];
    const openStore = (options?: Parameters<typeof SqliteEventStore.open>[1]): SqliteEventStore => {
      const store = SqliteEventStore.open(file, { writer: mode, ...options });
      open.push(store);
      return store;
    };

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'kairos-sqlite-'));
      file = join(dir, 'events.db');
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    });

    it('keeps events across close and reopen, and positions keep growing', async () => {
      const first = openStore();
      const e = event('TaskCreated', { name: 'ü' }, { who: 'me' });
      const written = await first.appendToStream('kairos-task-1', [e, event()]);
      await first.close();
      const second = openStore();
      expect(await second.readStream('kairos-task-1')).toMatchObject([
        { id: e.id, data: { name: 'ü' }, metadata: { who: 'me' }, revision: 0n },
        { revision: 1n },
      ]);
      expect(await second.headPosition()).toBe(written.position);
      await expect(second.appendToStream('kairos-task-1', [event()], { expectedRevision: 1n })).resolves.toMatchObject({
        nextExpectedRevision: 2n,
      });
      expect((await second.readAll()).map((x) => x.position)).toEqual([1n, 2n, 3n]);
    });

    it('commits appends issued in the same tick in one transaction (group commit)', async () => {
      const store = openStore();
      const before = store.metrics.transactions;
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          store.appendToStream(`kairos-task-${i}`, [event()], { expectedRevision: 'no_stream' }),
        ),
      );
      expect(store.metrics.transactions - before).toBeLessThanOrEqual(2);
      expect(new Set(results.map((r) => r.position)).size).toBe(1000);
      expect(store.metrics.eventsWritten).toBe(1000);
    });

    it('fails one append of a group commit alone', async () => {
      const store = openStore();
      await store.appendToStream('taken', [event()]);
      const before = store.metrics.transactions;
      const outcomes = await Promise.allSettled([
        store.appendToStream('a', [event()]),
        store.appendToStream('taken', [event()], { expectedRevision: 'no_stream' }),
        store.appendToStream('b', [event()]),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(store.metrics.transactions - before).toBe(1);
    });

    it('fails only the culprit when an insert breaks a constraint the checks could not foresee (damaged file)', async () => {
      const store = openStore();
      // A row the streams table does not know about: the append to 'damaged' will collide on its anchor (stream, revision 0).
      const raw = new Database(file);
      raw
        .prepare(
          "INSERT INTO events (id, stream, revision, previous, type, data, metadata, time) VALUES (?, 'damaged', 0, 0, 'T', '1', NULL, 0)",
        )
        .run(event().id);
      raw.close();
      const outcomes = await Promise.allSettled([
        store.appendToStream('a', [event()]),
        store.appendToStream('damaged', [event()]),
        store.appendToStream('b', events(2)),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      const failure = outcomes[1]?.status === 'rejected' ? (outcomes[1].reason as unknown) : undefined;
      expect(isKairosError(failure) && failure.code).toBe('internal');
      expect((await store.readAll()).map((e) => e.stream)).toEqual(['damaged', 'a', 'b', 'b']);
    });

    it('waits out a write lock held by another connection (SQLITE_BUSY is retried, not surfaced)', async () => {
      const store = openStore({ busyTimeoutMs: 20 });
      const other = new Database(file);
      other.exec('BEGIN IMMEDIATE');
      // Held until the store has met the lock (a writer thread may take a while to start on a busy machine).
      const release = (async () => {
        const deadline = Date.now() + 10_000;
        while (store.metrics.busyRetries === 0 && Date.now() < deadline) await settle(10);
        other.exec('COMMIT');
      })();
      const result = await store.appendToStream('s', [event()]);
      await release;
      other.close();
      expect(result.nextExpectedRevision).toBe(0n);
      expect(store.metrics.busyRetries).toBeGreaterThan(0);
    });

    it('rejects with unavailable when the lock is held past busyRetryLimitMs, and recovers afterwards', async () => {
      const store = openStore({ busyTimeoutMs: 10, busyRetryLimitMs: 150 });
      const other = new Database(file);
      other.exec('BEGIN IMMEDIATE');
      const error = await rejectionOf(store.appendToStream('s', [event()]));
      other.exec('ROLLBACK');
      other.close();
      expect(isKairosError(error) && error.code).toBe('unavailable');
      await expect(store.appendToStream('s', [event()], { expectedRevision: 'no_stream' })).resolves.toMatchObject({
        nextExpectedRevision: 0n,
      });
    });

    it('sees commits of another connection live, by polling', async () => {
      const reader = openStore({ pollIntervalMs: 10 });
      const writer = SqliteEventStore.open(file, { writer: mode });
      open.push(writer);
      const received = collect(reader.subscribeToAll({ streamPrefixes: ['w-'] }), 3);
      await settle(30);
      await writer.appendToStream('w-1', events(2));
      await writer.appendToStream('x', [event()]);
      await writer.appendToStream('w-2', [event()]);
      expect((await received).map((e) => e.stream)).toEqual(['w-1', 'w-1', 'w-2']);
    });

    it('yields to the event loop between catch-up pages read from the file', async () => {
      const writer = openStore();
      await writer.appendBatch(Array.from({ length: 20 }, (_, i) => ({ stream: `s-${i}`, events: events(500) })));
      await writer.close();
      // A store just opened holds no rows in memory: every page is a read.
      const store = openStore({ pageSize: 500 });
      let ticks = 0;
      const timer = setInterval(() => ticks++, 0);
      const got = await collect(store.subscribeToAll(), 10_000, 20_000);
      clearInterval(timer);
      expect(got).toHaveLength(10_000);
      expect(ticks).toBeGreaterThan(0);
    });

    it('delivers the rows of its latest commits from memory without waiting between pages', async () => {
      const store = openStore({ pageSize: 500 });
      await store.appendBatch(Array.from({ length: 4 }, (_, i) => ({ stream: `s-${i}`, events: events(500) })));
      await store.appendBatch(Array.from({ length: 4 }, (_, i) => ({ stream: `t-${i}`, events: events(500) })));
      let ticks = 0;
      const timer = setInterval(() => ticks++, 0);
      const got = await collect(store.subscribeToAll(), 4_000, 20_000);
      clearInterval(timer);
      expect(positions(got)).toEqual(Array.from({ length: 4_000 }, (_, i) => BigInt(i + 1)));
      expect(ticks).toBe(0);
    });

    it('reads a rare prefix in a long log in bounded slices', async () => {
      const store = openStore({ pageSize: 100 });
      await store.appendBatch(Array.from({ length: 50 }, (_, i) => ({ stream: `noise-${i}`, events: events(200) })));
      await store.appendToStream('rare-1', [event()]);
      expect((await collect(store.subscribeToAll({ streamPrefixes: ['rare-'] }), 1)).map((e) => e.stream)).toEqual([
        'rare-1',
      ]);
    });

    it('opens sqlite: URLs, relative (creating folders) and absolute', async () => {
      const relative = await openEventStore('sqlite:nested/deeper/events.db', { cwd: dir });
      await relative.appendToStream('s', [event()]);
      await relative.close();
      expect(existsSync(join(dir, 'nested', 'deeper', 'events.db'))).toBe(true);
      const absolute = await openEventStore(`sqlite:${join(dir, 'nested', 'deeper', 'events.db')}`);
      expect(await absolute.streamRevision('s')).toBe(0n);
      await absolute.close();
      await expect(openEventStore('sqlite:')).rejects.toMatchObject({ code: 'validation_failed' });
    });

    it('upgrades a version-1 log in place, keeping positions, revisions, retention cuts and the position counter', async () => {
      // The schema of version 1, as Kairos wrote it: every (stream, revision) indexed, no `previous`.
      const v1 = new Database(file);
      v1.exec(`
        CREATE TABLE events (position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
          stream TEXT NOT NULL, revision INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL,
          metadata TEXT, time INTEGER NOT NULL, UNIQUE (stream, revision));
        CREATE TABLE streams (stream TEXT PRIMARY KEY, revision INTEGER NOT NULL, position INTEGER NOT NULL) WITHOUT ROWID;
      `);
      const insert = v1.prepare(
        "INSERT INTO events (id, stream, revision, type, data, metadata, time) VALUES (?, ?, ?, 'T', '{}', NULL, 0)",
      );
      const head = v1.prepare('INSERT OR REPLACE INTO streams (stream, revision, position) VALUES (?, ?, ?)');
      for (let r = 0; r < 70; r++) {
        head.run('a', r, insert.run(event().id, 'a', r).lastInsertRowid);
        if (r % 10 === 0) head.run('b', r / 10, insert.run(event().id, 'b', r / 10).lastInsertRowid);
      }
      v1.exec("DELETE FROM events WHERE stream = 'a' AND revision < 5");
      // AUTOINCREMENT's counter, not the highest row, says where positions go on.
      v1.exec("UPDATE sqlite_sequence SET seq = seq + 3 WHERE name = 'events'");
      const counter = BigInt(
        v1.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").pluck().get() as number,
      );
      const before = v1.prepare('SELECT position, id, stream, revision FROM events ORDER BY position').all();
      v1.pragma('user_version = 1');
      v1.close();

      const store = openStore();
      const all = await store.readAll();
      expect(
        all.map((e) => ({ position: Number(e.position), id: e.id, stream: e.stream, revision: Number(e.revision) })),
      ).toEqual(before);
      expect((await store.readStream('a')).map((e) => e.revision)).toEqual(
        Array.from({ length: 65 }, (_, i) => BigInt(i + 5)),
      );
      expect((await store.readStream('a', { fromRevision: 63n, maxCount: 3 })).map((e) => e.revision)).toEqual([
        63n,
        64n,
        65n,
      ]);
      expect((await store.readStream('a', { fromRevision: 0n, maxCount: 2 })).map((e) => e.revision)).toEqual([5n, 6n]);
      expect((await store.readStream('b', { direction: 'backwards' })).map((e) => e.revision)).toEqual([
        6n,
        5n,
        4n,
        3n,
        2n,
        1n,
        0n,
      ]);
      const appended = await store.appendToStream('a', events(2), { expectedRevision: 69n });
      expect(appended.position).toBe(counter + 2n);
      expect((await store.readStream('a', { direction: 'backwards', maxCount: 3 })).map((e) => e.revision)).toEqual([
        71n,
        70n,
        69n,
      ]);
      await store.close();
      const raw = new Database(file);
      expect(raw.pragma('user_version', { simple: true })).toBe(2);
      // A Kairos of schema 1 left running would insert without `previous`: refused, not a broken chain.
      expect(() =>
        raw
          .prepare(
            "INSERT INTO events (id, stream, revision, type, data, metadata, time) VALUES (?, 'a', 72, 'T', '{}', NULL, 0)",
          )
          .run(event().id),
      ).toThrow(/NOT NULL/);
      raw.close();
    });

    it('drops the rows it keeps for subscribers when another process truncates a stream', async () => {
      const store = openStore();
      await store.appendToStream('s', events(4));
      await store.appendToStream('t', events(1));
      await store.appendToStream('s', events(1));
      const other = openStore();
      await other.truncateBefore('s', 4n);
      const all = (await store.readAll()).map((e) => `${e.stream}@${e.revision}`);
      expect(all).toEqual(['t@0', 's@4']);
      const live = (await collect(store.subscribeToAll(), 2)).map((e) => `${e.stream}@${e.revision}`);
      expect(live).toEqual(all);
    });

    describe('two OS processes on one file', () => {
      it('lose and duplicate nothing, and exactly one wins each contended revision', async () => {
        SqliteEventStore.open(file).close();
        const rounds = 60;
        const streams = 8;
        const workers = ['p1', 'p2'].map((name) => startWorker(file, name, 'claim', rounds, streams));
        await Promise.all(workers.map((w) => w.ready));
        for (const w of workers) w.go();
        const results = (await Promise.all(workers.map((w) => w.result))) as {
          worker: string;
          claims: Record<string, { won: number[]; lost: number[] }>;
        }[];

        const store = openStore();
        const all = (await store.readAll()).filter((e) => e.stream.startsWith('contended-'));
        expect(all).toHaveLength(rounds * streams);
        expect(isStrictlyIncreasing(positions(all))).toBe(true);
        expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
        let lostTotal = 0;
        for (let k = 0; k < streams; k++) {
          const stream = `contended-${k}`;
          const stored = await store.readStream(stream);
          expect(stored.map((e) => e.revision)).toEqual(Array.from({ length: rounds }, (_, r) => BigInt(r)));
          const winners = new Map<number, string>();
          for (const { worker, claims } of results) {
            for (const r of claims[stream]?.won ?? []) {
              expect(winners.has(r), `revision ${r} of ${stream} won twice`).toBe(false);
              winners.set(r, worker);
            }
          }
          expect(winners.size).toBe(rounds);
          for (const { worker, claims } of results) {
            // Every revision a process lost was won by the other one.
            for (const r of claims[stream]?.lost ?? []) expect(winners.get(r)).not.toBe(worker);
            lostTotal += claims[stream]?.lost.length ?? 0;
          }
          // What the log holds at each revision is what the winner appended there.
          for (const e of stored)
            expect(e.data).toEqual({ worker: winners.get(Number(e.revision)), revision: Number(e.revision) });
        }
        // The processes really contended and overlapped: there were losses, and each won some revisions.
        expect(lostTotal).toBeGreaterThan(0);
        for (const { claims } of results) expect(Object.values(claims).some((c) => c.won.length > 0)).toBe(true);
      });

      it('a subscriber in this process sees the other process’s appends live, in order, once', async () => {
        const store = openStore();
        await store.appendToStream('before', events(5));
        const head = await store.headPosition();
        const worker = startWorker(file, 'p2', 'spread', 400, 10);
        await worker.ready;
        const seen: { event: RecordedEvent; at: number }[] = [];
        const subscription = store
          .subscribeToAll({ after: head })
          .subscribe((e) => seen.push({ event: e, at: Date.now() }));
        worker.go();
        // This process appends at the same time, so the two processes' commits interleave.
        const own: Promise<unknown>[] = [];
        for (let i = 0; i < 10; i++) {
          own.push(store.appendToStream(`p1-${i}`, events(20)));
          await settle(10);
        }
        await Promise.all(own);
        const { ids } = (await worker.result) as { ids: string[] };
        const doneAt = Date.now();
        const expected = 400 + 200;
        for (let waited = 0; seen.length < expected && waited < 5000; waited += 20) await settle(20);
        subscription.unsubscribe();

        const all = await store.readAll({ after: head });
        expect(all).toHaveLength(expected);
        expect(seen.map((s) => s.event.position)).toEqual(positions(all));
        const fromWorker = seen.filter((s) => s.event.stream.startsWith('p2-'));
        expect(fromWorker.map((s) => s.event.id).sort()).toEqual([...ids].sort());
        // Live: most of p2's events arrived while p2 was still appending, not in one catch-up at the end.
        expect(fromWorker.filter((s) => s.at < doneAt).length).toBeGreaterThan(ids.length / 2);
      });
    });
  });
}
