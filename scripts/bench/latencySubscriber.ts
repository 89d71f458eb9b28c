import { subscribe } from '../../src/client/index.js';

/**
 * A business service for the read-side lateness benchmark (readSide.ts), in its own process as a user's
 * would be: one consumer of `group` on `topic` through the SDK, whose handler notes when it started
 * (`Date.now()`, the same machine clock the node fires by) against the fire's `scheduledAt` and returns
 * at once. Forked with an IPC channel: it sends `{t: 'ready'}` once connected, then every 250 ms
 * `{t: 'samples', samples: [scheduledAt, handledAt, ...], duplicates}` — `duplicates`: how many times
 * so far the handler ran for a fire it had already handled; `{t: 'stop'}` flushes, closes and exits.
 *
 *   fork('dist/scripts/bench/latencySubscriber.js', [url, group, topic])
 */
export type SubscriberMessage =
  { t: 'ready' } | { t: 'samples'; samples: number[]; duplicates: number } | { t: 'error'; message: string };

const [url, group, topic] = process.argv.slice(2);
if (!url || !group || !topic || !process.send) {
  console.error('usage (forked with IPC): latencySubscriber.js <node url> <group> <topic>');
  process.exit(2);
}

const send = (message: SubscriberMessage): void => {
  if (process.connected) process.send?.(message);
};

let samples: number[] = [];
let duplicates = 0;
// Fires handled in the last one to two minutes, in two generations: a redelivery comes within the
// task's timeout (60 s by default), and a set of every fire of a long run would grow without bound.
let handled = new Set<string>();
let handledBefore = new Set<string>();
const rotate = setInterval(() => {
  handledBefore = handled;
  handled = new Set();
}, 60_000);
const subscription = subscribe(
  {
    url,
    group,
    topics: [topic],
    onError: (error) => send({ t: 'error', message: error.message }),
  },
  (fire) => {
    samples.push(Date.parse(fire.scheduledAt), Date.now());
    if (handled.has(fire.fireId) || handledBefore.has(fire.fireId)) duplicates++;
    else handled.add(fire.fireId);
  },
);

const flush = (): void => {
  if (samples.length === 0) return;
  send({ t: 'samples', samples, duplicates });
  samples = [];
};
const timer = setInterval(flush, 250);

subscription.ready.then(
  () => send({ t: 'ready' }),
  (err: unknown) => {
    send({ t: 'error', message: `subscription failed: ${(err as Error).message}` });
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
  void subscription.close().finally(() => process.exit(0));
};
process.on('message', (message: { t?: string }) => {
  if (message.t === 'stop') stop();
});
// The bench died: nobody reads the samples any more.
process.on('disconnect', stop);
process.once('SIGTERM', stop);
