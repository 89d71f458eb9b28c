import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isIllegalStateError, isKairosError } from '../../domain/errors/index.js';
import { SqliteEventStore, type SqliteEventStoreOptions } from '../../src/store/sqlite/sqliteEventStore.js';
import { ThreadWriter } from '../../src/store/sqlite/threadWriter.js';
import { event, events, isStrictlyIncreasing, positions, rejectionOf, settle } from '../contract/eventStoreFixtures.js';

/** The store's writer thread: private, reached here only to make it crash. */
const writerOf = (store: SqliteEventStore): ThreadWriter => {
  const writer = store['writer'];
  if (!(writer instanceof ThreadWriter)) throw new Error('the store has no writer thread');
  return writer;
};

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Holds the file's write lock from another OS process until told to release it (a line on stdin), so the
 * writer thread meets SQLITE_BUSY from outside its own process.
 */
const lockFromOtherProcess = async (file: string): Promise<{ release(): Promise<void> }> => {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    process.stdin.once('data', () => { db.exec('COMMIT'); db.close(); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['-e', script, file], {
    cwd: process.cwd(),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`lock holder exited with ${code}`)))),
  );
  await Promise.race([
    new Promise<void>((resolve) => createInterface({ input: child.stdout }).once('line', () => resolve())),
    exited.then(() => Promise.reject(new Error('lock holder exited before locking'))),
  ]);
  return {
    release: async () => {
      child.stdin.write('go\n');
      await exited;
    },
  };
};

describe('SqliteEventStore writer thread', () => {
  let dir: string;
  let file: string;
  const open: SqliteEventStore[] = [];
  const openStore = (options?: SqliteEventStoreOptions): SqliteEventStore => {
    const store = SqliteEventStore.open(file, options);
    open.push(store);
    return store;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kairos-writer-'));
    file = join(dir, 'events.db');
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('waits out SQLITE_BUSY from another connection and from another process, and keeps working', async () => {
    const store = openStore({ busyTimeoutMs: 10 });
    await store.appendToStream('s', [event()]);

    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const blocked = store.appendToStream('s', [event()], { expectedRevision: 0n });
    await settle(100);
    other.exec('COMMIT');
    other.close();
    await expect(blocked).resolves.toMatchObject({ nextExpectedRevision: 1n });
    const retriesAfterConnection = store.metrics.busyRetries;
    expect(retriesAfterConnection).toBeGreaterThan(0);

    const lock = await lockFromOtherProcess(file);
    const alsoBlocked = store.appendToStream('s', [event()], { expectedRevision: 1n });
    await settle(100);
    await lock.release();
    await expect(alsoBlocked).resolves.toMatchObject({ nextExpectedRevision: 2n });
    expect(store.metrics.busyRetries).toBeGreaterThan(retriesAfterConnection);

    await expect(store.appendToStream('s', events(3), { expectedRevision: 2n })).resolves.toMatchObject({
      nextExpectedRevision: 5n,
    });
    expect(store.metrics).toMatchObject({ transactions: 4, eventsWritten: 6 });
  });

  it('rejects appends in flight and later ones with a clear error when the thread dies, never hanging', async () => {
    const store = openStore();
    await store.appendToStream('s', [event()]);
    // A request the thread does not understand makes it die (as a bug in it would), before it reads the
    // commit posted after it: that append is certainly in flight, unanswered, when the thread is gone.
    writerOf(store)['worker'].postMessage({ kind: 'no such request' });
    const pending = store.appendToStream('s', events(2));

    const error = await rejectionOf(pending);
    expect(isKairosError(error) && error.code).toBe('unavailable');
    expect((error as Error).message).toMatch(/writer thread failed: .*may or may not have been committed/);
    const later = await rejectionOf(store.appendToStream('t', [event()]));
    expect(later).toBe(error);

    // Reads use this thread's connection and still work; the dead thread left no lock behind.
    expect(await store.streamRevision('s')).toBe(0n);
    const next = openStore();
    await expect(next.appendToStream('s', [event()], { expectedRevision: 0n })).resolves.toMatchObject({
      nextExpectedRevision: 1n,
    });
    await expect(store.close()).resolves.toBeUndefined();
  });

  it('close() commits and resolves appends in flight and queued behind them before it resolves', async () => {
    const store = openStore();
    const first = Array.from({ length: 1000 }, (_, i) => store.appendToStream(`a-${i}`, [event()]));
    await nextTurn();
    // The first group commit is in the writer thread now; these queue for the next one.
    const second = Array.from({ length: 1000 }, (_, i) => store.appendToStream(`b-${i}`, [event()]));
    const settled: string[] = [];
    void Promise.all([...first, ...second]).then(() => settled.push('appends'));
    await store.close();
    settled.push('close');
    expect(settled).toEqual(['appends', 'close']);
    expect(isIllegalStateError(await rejectionOf(store.appendToStream('c', [event()])))).toBe(true);

    const reopened = openStore();
    expect(await reopened.readAll()).toHaveLength(2000);
  });

  it('decides appends to one stream in submission order across pipelined group commits', async () => {
    const store = openStore();
    const results: Promise<{ position: bigint }>[] = [];
    for (let r = 0; r < 100; r++) {
      results.push(store.appendToStream('s', [event()], { expectedRevision: r === 0 ? 'no_stream' : BigInt(r - 1) }));
      // Some land while an earlier batch is committing, some in the same batch.
      if (r % 7 === 0) await nextTurn();
    }
    const written = await Promise.all(results);
    expect(isStrictlyIncreasing(written.map((w) => w.position))).toBe(true);
    expect(positions(await store.readStream('s'))).toEqual(written.map((w) => w.position));
    expect(store.metrics.transactions).toBeGreaterThan(1);
    expect(store.metrics.eventsWritten).toBe(100);
  });

  it.each(['thread', 'inline'] as const)(
    'keeps the event loop turning during a large commit with the %s writer (inline blocks it)',
    async (writer) => {
      const store = openStore({ writer });
      await store.appendToStream('warm-up', [event()]);
      const order: string[] = [];
      const big = store
        .appendBatch(Array.from({ length: 200 }, (_, i) => ({ stream: `big-${i}`, events: events(100) })))
        .then((results) => {
          order.push('append resolved');
          return results;
        });
      // Queued after the group commit's own setImmediate, so it runs once the flush has returned.
      setImmediate(() => {
        order.push('next turn');
        // Reads are served on this thread meanwhile, and do not see the uncommitted batch.
        void store.headPosition().then((head) => order.push(`head ${head}`));
      });
      expect((await big).every((r) => r.ok)).toBe(true);
      await settle(0);
      expect(order).toEqual(
        writer === 'thread'
          ? ['next turn', 'head 1', 'append resolved']
          : ['append resolved', 'next turn', 'head 20001'],
      );
    },
  );
});
