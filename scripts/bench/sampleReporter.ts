/**
 * The reporting half of a bench's handler process (latencySubscriber.ts, bullmqWorker.ts), forked with
 * an IPC channel: `{t: 'ready'}` once `ready` resolves, then every 250 ms `{t: 'samples', samples:
 * [scheduledAt, handledAt, ...], duplicates}` — `duplicates`: how many times so far a handler ran for a
 * fire it had already handled; `{t: 'error'}` for what goes wrong; `{t: 'stop'}` (or the bench gone, or
 * SIGTERM) flushes, `close`s, flushes what ran meanwhile and exits.
 */
export type SubscriberMessage =
  { t: 'ready' } | { t: 'samples'; samples: number[]; duplicates: number } | { t: 'error'; message: string };

export type SampleReporter = {
  /** A handler started for the fire `key` scheduled at `scheduledAt` (epoch ms): noted with `Date.now()`. */
  handled(key: string, scheduledAt: number): void;
  error(message: string): void;
};

export const sampleReporter = (options: {
  ready: Promise<unknown>;
  close: () => Promise<unknown>;
  /** Names what did not start, in the error. */
  what: string;
}): SampleReporter => {
  const send = (message: SubscriberMessage): void => {
    if (process.connected) process.send?.(message);
  };
  let samples: number[] = [];
  let duplicates = 0;
  // Fires handled in the last one to two minutes, in two generations: a redelivery comes within a
  // fire's timeout (a minute by default), and a set of every fire of a long run would grow without bound.
  let handled = new Set<string>();
  let handledBefore = new Set<string>();
  const rotate = setInterval(() => {
    handledBefore = handled;
    handled = new Set();
  }, 60_000);
  const flush = (): void => {
    if (samples.length === 0) return;
    send({ t: 'samples', samples, duplicates });
    samples = [];
  };
  const timer = setInterval(flush, 250);
  options.ready.then(
    () => send({ t: 'ready' }),
    (err: unknown) => {
      send({ t: 'error', message: `${options.what} did not start: ${(err as Error).message}` });
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
    void options.close().finally(() => {
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
  return {
    handled(key, scheduledAt) {
      samples.push(scheduledAt, Date.now());
      if (handled.has(key) || handledBefore.has(key)) duplicates++;
      else handled.add(key);
    },
    error: (message) => send({ t: 'error', message }),
  };
};
