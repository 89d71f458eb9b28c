import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Queue, type RepeatOptions } from 'bullmq';
import type { FiringPhase, TickSpread } from './firingPhase.js';
import { benchDir, round1, sleep, windowOf } from './fixtures.js';
import { startRedisServer, type RedisServer } from './redisServer.js';
import { forkSampler, rssMib, watchUntil, watchedPids, type Subscriber } from './userProcesses.js';

export type BullmqPhaseOptions = {
  tasks: number;
  ticks: TickSpread;
  warmMs: number;
  measureMs: number;
};

/** firingPhase's figures where they apply; `applySeconds` is the time `upsertJobScheduler` took for all tasks. */
export type BullmqPhase = Pick<
  FiringPhase<never>,
  'name' | 'lateness' | 'handledPerSecond' | 'expected' | 'duplicates' | 'applySeconds'
> & {
  redisRssMib: number;
  workerRssMib: number;
  /** CPU used during the measured window, in % of one core; redis counts its AOF-rewrite children. */
  cpu: { redis: number; worker: number };
  /** What the worker reported through its `error` and `failed` events. */
  workerErrors: string[];
};

const QUEUE = 'bench';
/** Upserts in flight at once: ioredis writes them back to back on its one connection, a pipeline in effect. */
const BATCH = 1_000;

/**
 * A task's schedule as a BullMQ job scheduler, the same ticks as firingPhase gives Kairos's tasks.
 *
 * `every` (BullMQ 6.7.6, getJobSchedulerEveryNextMillis.lua): without `startDate` or `offset` the first tick
 * is the instant the scheduler is created, the next ones every `every` ms after it — a phase set by when
 * each upsert happened to run, not an even spread. With `offset` in (0, every] the first tick is the next
 * `k·every + offset` after creation and later ones follow at `every` from it (a late pickup skips to the
 * next such slot, offset kept), so task i gets offset floor(i·1000/N). BullMQ reads offset 0 as "none"
 * (`every && offset ? offset : null` in job-scheduler.js), which would give task 0 its creation instant:
 * it takes offset 1000 instead, the same phase. (`startDate` would do too, but only a date past the end of
 * the whole creation, unknown beforehand, fixes the phase: an earlier one means "now".)
 *
 * `pattern` with 6 fields (cron-parser): seconds first; every tick on the whole second.
 */
const repeatOf = (i: number, options: BullmqPhaseOptions): RepeatOptions =>
  options.ticks === 'aligned'
    ? { pattern: '* * * * * *' }
    : { every: 1_000, offset: Math.floor((i * 1_000) / options.tasks) || 1_000 };

/**
 * One load on BullMQ, as a user runs it, beside firingPhase's on Kairos: a fresh redis-server of its own
 * (AOF, `appendfsync everysec`), one worker in its own process (bullmqWorker.ts) whose handler returns at
 * once, `tasks` job schedulers firing every second created with `queue.upsertJobScheduler` in parallel
 * batches of 1,000, then `warmMs` of warm-up and `measureMs` measured. Lateness is handler start − the tick
 * the scheduler meant (bullmqWorker.ts, tickOf); the schedulers start firing as they are created.
 */
export const bullmqPhase = async (name: string, options: BullmqPhaseOptions): Promise<BullmqPhase> => {
  const dir = benchDir();
  let redis: RedisServer | undefined;
  let worker: Subscriber | undefined;
  let queue: Queue | undefined;
  try {
    const redisDir = join(dir.path, 'redis');
    mkdirSync(redisDir);
    redis = await startRedisServer(redisDir);
    worker = await forkSampler(
      new URL('./bullmqWorker.js', import.meta.url),
      [String(redis.port), QUEUE],
      'the BullMQ worker',
    );

    // The clock starts once the producer is connected: `kairos apply`'s time includes starting the CLI,
    // but a BullMQ producer is usually part of a long-lived service.
    const producer = new Queue(QUEUE, { connection: { host: '127.0.0.1', port: redis.port } });
    queue = producer;
    await producer.waitUntilReady();
    const started = performance.now();
    for (let start = 0; start < options.tasks; start += BATCH) {
      const ids = Array.from({ length: Math.min(BATCH, options.tasks - start) }, (_, k) => start + k);
      await Promise.all(
        ids.map((i) => producer.upsertJobScheduler(`load-${i}`, repeatOf(i, options), { name: 'tick' })),
      );
    }
    const applyMs = performance.now() - started;
    const created = await producer.getJobSchedulersCount();
    if (created !== options.tasks) throw new Error(`${created} job schedulers created, not ${options.tasks}`);
    queue = undefined;
    await producer.close();

    const from = Date.now() + options.warmMs;
    const to = from + options.measureMs;
    await sleep(from - Date.now());
    const server = redis;
    const seen = await watchUntil(
      {
        redis: { cpuMs: () => server.cpuMs(), rssMib: () => rssMib(server.pid) },
        worker: watchedPids(worker.child.pid ?? -1),
      },
      to,
    );
    const cpu = { redis: seen.redis.cpu, worker: seen.worker.cpu };
    // A fire scheduled late in the window is handled a little after it.
    await sleep(3_000);
    await worker.stop();

    const { lateness, handled } = windowOf(worker.samples, from, to);
    return {
      name,
      lateness,
      handledPerSecond: Math.round(handled / (options.measureMs / 1000)),
      expected: Math.round((options.tasks * options.measureMs) / 1000),
      duplicates: worker.duplicates,
      applySeconds: round1(applyMs / 1000),
      redisRssMib: seen.redis.rssMib,
      workerRssMib: seen.worker.rssMib,
      cpu,
      workerErrors: worker.errors,
    };
  } finally {
    await queue?.close().catch(() => {});
    await worker?.stop();
    await redis?.stop();
    dir.remove();
  }
};
