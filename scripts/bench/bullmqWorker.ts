import { Worker } from 'bullmq';
import { sampleReporter } from './sampleReporter.js';

/**
 * BullMQ's side of the capacity benchmark (bullmqPhase.ts), the counterpart of latencySubscriber.ts: one
 * worker on `queue` in its own process, as a user's would be, concurrency 200, whose handler notes when it
 * started (`Date.now()`) against the tick its job scheduler meant and returns at once. Completed jobs are
 * removed at once and the last 1,000 failed ones kept (`removeOnComplete: {count: 0}`, `removeOnFail:
 * {count: 1000}`), so Redis holds only what is scheduled or running however long the run. It reports
 * over IPC as sampleReporter.ts says, the worker's `error` and `failed` events as errors.
 *
 *   fork('dist/scripts/bench/bullmqWorker.js', [redisPort, queue])
 */
const [port, queue] = process.argv.slice(2);
if (!port || !queue || !process.send) {
  console.error('usage (forked with IPC): bullmqWorker.js <redis port> <queue>');
  process.exit(2);
}

/**
 * The tick a job's scheduler meant it for: a scheduler's job id is `repeat:<schedulerId>:<tick ms>`, for
 * `every` and `pattern` alike. Not `timestamp + delay`: the delay is clamped at 0, so for a job created
 * after its tick that sum is the creation instant; and `opts.prevMillis` is set for `pattern` only (for
 * `every` the tick is computed in Redis, getJobSchedulerEveryNextMillis.lua, and lands in the id alone).
 */
const tickOf = (jobId: string): number => Number(jobId.slice(jobId.lastIndexOf(':') + 1));

const worker = new Worker(
  queue,
  // A job id names one tick of one scheduler: a second run of it is a redelivery (a stalled job moved
  // back to wait after its 30 s lock).
  async (job) => reporter.handled(job.id ?? '', tickOf(job.id ?? '')),
  {
    connection: { host: '127.0.0.1', port: Number(port) },
    concurrency: 200,
    removeOnComplete: { count: 0 },
    removeOnFail: { count: 1_000 },
  },
);
worker.on('error', (error) => reporter.error(`worker: ${error.message}`));
worker.on('failed', (job, error) => reporter.error(`job ${job?.id ?? '?'} failed: ${error.message}`));
// Jobs taken before the close still run their (instant) handler: the reporter flushes those too.
const reporter = sampleReporter({ ready: worker.waitUntilReady(), close: () => worker.close(), what: 'the worker' });
