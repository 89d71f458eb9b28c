import { statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';
import { benchDir, mib, openNode, percentile, seedTasks, settleMemory, sleep } from './fixtures.js';

export type Result = Record<string, string | number>;

/**
 * Fire lateness: `tasks` tasks `every: 1s`, all on the same whole second (the worst case: every fire of
 * a second is due in the same millisecond), answered at once by a business service, for `seconds`.
 * Lateness is measured twice: when the fire was decided (`firedAt - scheduledAt`, what the log
 * records) and when its append was durable (fsynced) — the instant delivery may start.
 */
export const lateness = async (
  tasks: number,
  seconds: number,
  spread: 'aligned' | 'spread',
  synchronous: 'FULL' | 'NORMAL' = 'FULL',
): Promise<Result> => {
  const dir = benchDir();
  const store = SqliteEventStore.open(join(dir.path, 'kairos.db'), { synchronous });
  try {
    const start = Math.ceil(Date.now() / 1000) * 1000 + 2_000;
    // aligned: every task on the same millisecond of each second; spread: evenly over the second.
    const offset = (i: number) => (spread === 'aligned' ? 0 : Math.floor((i * 1000) / tasks));
    await seedTasks(
      store,
      tasks,
      (i) => ({
        schedule: { every: '1s', startAt: new Date(start + offset(i)).toISOString() },
        target: { topic: 'bench' },
        overlap: 'allow',
      }),
      Date.now(),
    );
    const node = openNode({ dataDir: dir.path, store, answer: true });
    const decided: number[] = [];
    const durable: number[] = [];
    const end = start + 2_000 + seconds * 1000;
    node.appended$.subscribe(({ events }) => {
      const now = Date.now();
      for (const e of events) {
        if (e.type !== 'TaskFired' || e.data.attempt !== 1) continue;
        const scheduled = Date.parse(e.data.scheduledAt);
        // The first two seconds warm the process up (JIT); they are not counted.
        if (scheduled < start + 2_000 || scheduled >= end) continue;
        decided.push(Date.parse(e.data.firedAt) - scheduled);
        durable.push(now - scheduled);
      }
    });
    await node.start();
    await sleep(end - Date.now() + 1_500);
    await node.stop();
    decided.sort((a, b) => a - b);
    durable.sort((a, b) => a - b);
    return {
      scenario: `lateness: ${tasks} tasks every 1s (${spread}, synchronous=${synchronous}) for ${seconds}s`,
      fires: decided.length,
      'decided p50 ms': percentile(decided, 50),
      'decided p99 ms': percentile(decided, 99),
      'decided max ms': decided.at(-1) ?? Number.NaN,
      'durable p50 ms': percentile(durable, 50),
      'durable p99 ms': percentile(durable, 99),
      'durable max ms': durable.at(-1) ?? Number.NaN,
      'store transactions': store.metrics.transactions,
    };
  } finally {
    await store.close();
    dir.remove();
  }
};

/** Durable fires per second: `tasks` one-shot tasks all due at the same instant, no outcomes. */
export const burst = async (tasks: number): Promise<Result> => {
  const dir = benchDir();
  const store = SqliteEventStore.open(join(dir.path, 'kairos.db'));
  try {
    // Enough lead for seeding and replay; should the node be ready later, timing starts at readiness.
    const at = Date.now() + 20_000;
    await seedTasks(
      store,
      tasks,
      () => ({ schedule: { at: new Date(at).toISOString() }, target: { topic: 'bench' } }),
      Date.now(),
    );
    const node = openNode({ dataDir: dir.path, store, answer: false });
    let fired = 0;
    let last = 0;
    node.appended$.subscribe(({ events }) => {
      for (const e of events) if (e.type === 'TaskFired') fired++;
      last = Date.now();
    });
    await node.start();
    const tx = store.metrics.transactions;
    const from = Math.max(at, Date.now());
    await sleep(from - Date.now());
    while (fired < tasks) await sleep(20);
    const seconds = (last - from) / 1000;
    await node.stop();
    return {
      scenario: `burst: ${tasks} fires due at one instant`,
      fires: fired,
      'seconds to durable': seconds.toFixed(2),
      'fires/s': Math.round(fired / seconds),
      'store transactions': store.metrics.transactions - tx,
    };
  } finally {
    await store.close();
    dir.remove();
  }
};

/** Memory with `tasks` registered tasks (hourly), after the log is replayed. */
export const memory = async (tasks: number): Promise<Result> => {
  const dir = benchDir();
  const store = SqliteEventStore.open(join(dir.path, 'kairos.db'));
  try {
    const created = Date.now();
    await seedTasks(
      store,
      tasks,
      (i) => ({
        schedule: { every: '1h', startAt: new Date(created + 600_000 + (i % 3_600) * 1000).toISOString() },
        target: { topic: `bench.${i % 100}` },
      }),
      created,
    );
    const before = await settleMemory();
    const node = openNode({ dataDir: dir.path, store, answer: false });
    const t = Date.now();
    await node.start();
    const ready = Date.now() - t;
    const after = await settleMemory();
    const result = {
      scenario: `memory: ${tasks} registered tasks`,
      'ready ms': ready,
      rss: mib(after.rss),
      'heap used': mib(after.heapUsed),
      'heap per task': `${Math.round((after.heapUsed - before.heapUsed) / tasks)} B`,
    };
    await node.stop();
    return result;
  } finally {
    await store.close();
    dir.remove();
  }
};

/**
 * Starts a node on `store` and stops it again: how long `start()` took, and how much of it went before
 * the node's 'log replayed' line (the snapshot, if any, and reading and folding the log; not the
 * leases and wake-ups after it), ms.
 */
const timedStart = async (
  dataDir: string,
  store: SqliteEventStore,
  snapshot: boolean,
): Promise<{ ready: number; replay: number }> => {
  let replay = Number.NaN;
  const logger = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        const entry = JSON.parse(line) as { msg?: string; ms?: number };
        if (entry.msg === 'log replayed' && entry.ms !== undefined) replay = entry.ms;
      },
    },
  );
  const node = openNode({ dataDir, store, answer: true, snapshot, logger });
  const t = Date.now();
  await node.start();
  const ready = Date.now() - t;
  await node.stop();
  if (Number.isNaN(replay)) throw new Error("the node logged no 'log replayed' line");
  return { ready, replay };
};

/**
 * Recovery: a node with `tasks` tasks and some history (each fired `fires` times with outcomes) is
 * stopped; a new node replays the log and is ready to fire. (A `kill -9` leaves the same log: nothing
 * is written on stop.)
 */
export const recovery = async (tasks: number, fires: number): Promise<Result> => {
  const dir = benchDir();
  const file = join(dir.path, 'kairos.db');
  try {
    {
      const store = SqliteEventStore.open(file);
      const start = Math.ceil(Date.now() / 1000) * 1000 + 3_000;
      await seedTasks(
        store,
        tasks,
        () => ({ schedule: { every: '1s', startAt: new Date(start).toISOString() }, target: { topic: 'bench' } }),
        Date.now(),
      );
      const node = openNode({ dataDir: dir.path, store, answer: true });
      await node.start();
      await sleep(start + fires * 1000 - Date.now() + 500);
      await node.stop();
      await store.close();
    }
    const store = SqliteEventStore.open(file);
    const events = Number(await store.headPosition());
    // The whole log replayed (no snapshot yet); its stop saves one, which the next start loads.
    const whole = await timedStart(dir.path, store, true);
    const snapshotBytes = statSync(join(dir.path, 'node-state.snapshot')).size;
    const fromSnapshot = await timedStart(dir.path, store, true);
    await store.close();
    return {
      scenario: `recovery: ${tasks} tasks, ${events} events in the log`,
      'ready ms, whole log replayed': whole.ready,
      'events/s replayed (ready)': Math.round(events / (whole.ready / 1000)),
      'replay ms (read and folded)': whole.replay,
      'events/s replayed (read and folded)': Math.round(events / (whole.replay / 1000)),
      'ready ms, from the state snapshot saved at the last stop': fromSnapshot.ready,
      'of which snapshot loaded and tail replayed, ms': fromSnapshot.replay,
      'state snapshot MiB': Math.round(snapshotBytes / 2 ** 20),
    };
  } finally {
    dir.remove();
  }
};
