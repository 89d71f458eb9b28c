import { Worker } from 'bullmq';
import type { SubscriberMessage } from './latencySubscriber.js';

/**
 * BullMQ's side of the capacity benchmark (bullmqPhase.ts), the counterpart of latencySubscriber.ts: one
 * worker on `queue` in its own process, as a user's would be, concurrency 200, whose handler notes when it
 * started (`Date.now()`) against the tick its job scheduler meant and returns at once. Completed jobs are
 * removed at once and the last 1,000 failed ones kept (`removeOnComplete: {count: 0}`, `removeOnFail:
 * {count: 1000}`), so Redis holds only what is scheduled or running however long the run. Same IPC
 * protocol as latencySubscriber: `{t: 'ready'}` once connected, then every 250 ms `{t: 'samples',
 * samples: [scheduledAt, handledAt, ...], duplicates}`; `{t: 'error'}` for the worker's `error` and
 * `failed` events; `{t: 'stop'}` flushes, closes and exits.
 *
 *   fork('dist/scripts/bench/bullmqWorker.js', [redisPort, queue])
 */
const [port, queue] = process.argv.slice(2);
if (!port || !queue || !process.send) {
  console.error('usage (forked with IPC): bullmqWorker.js <redis port> <queue>');
  process.exit(2);
}

const send = (message: SubscriberMessage): void => {
  if (process.connected) process.send?.(message);
};

/**
 * The tick a job's scheduler meant it for: a scheduler's job id is `repeat:<schedulerId>:<tick ms>`, for
 * `every` and `pattern` alike. Not `timestamp + delay`: the delay is clamped at 0, so for a job created
 * after its tick that sum is the creation instant; and `opts.prevMillis` is set for `pattern` only (for
 * `every` the tick is computed in Redis, getJobSchedulerEveryNextMillis.lua, and lands in the id alone).
 */
const tickOf = (jobId: string): number => Number(jobId.slice(jobId.lastIndexOf(':') + 1));

let samples: number[] = [];
let duplicates = 0;
// A job id names one tick of one scheduler: a second run of it is a redelivery (a stalled job moved back
// to wait after its 30 s lock). Two generations of a minute each, as latencySubscriber keeps them.
let handled = new Set<string>();
let handledBefore = new Set<string>();
const rotate = setInterval(() => {
  handledBefore = handled;
  handled = new Set();
}, 60_000);

const worker = new Worker(
  queue,
  async (job) => {
    const at = Date.now();
    const id = job.id ?? '';
    samples.push(tickOf(id), at);
    if (handled.has(id) || handledBefore.has(id)) duplicates++;
    else handled.add(id);
  },
  {
    connection: { host: '127.0.0.1', port: Number(port) },
    concurrency: 200,
    removeOnComplete: { count: 0 },
    removeOnFail: { count: 1_000 },
  },
);
worker.on('error', (error) => send({ t: 'error', message: `worker: ${error.message}` }));
worker.on('failed', (job, error) => send({ t: 'error', message: `job ${job?.id ?? '?'} failed: ${error.message}` }));

const flush = (): void => {
  if (samples.length === 0) return;
  send({ t: 'samples', samples, duplicates });
  samples = [];
};
const timer = setInterval(flush, 250);

worker.waitUntilReady().then(
  () => send({ t: 'ready' }),
  (err: unknown) => {
    send({ t: 'error', message: `the worker could not connect: ${(err as Error).message}` });
    process.exit(1);
  },
);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  clearInterval(rotate);
  flush();
  // Jobs taken before the close still run their (instant) handler: flush those too.
  void worker.close().finally(() => {
    flush();
    process.exit(0);
  });
};
process.on('message', (message: { t?: string }) => {
  if (message.t === 'stop') stop();
});
// The bench died: nobody reads the samples any more.
process.on('disconnect', stop);
process.once('SIGTERM', stop);
