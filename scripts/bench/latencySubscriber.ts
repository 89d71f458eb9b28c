import { subscribe } from '../../src/client/index.js';
import { sampleReporter } from './sampleReporter.js';

/**
 * A business service for the benchmarks that measure handler-observed lateness (firingPhase.ts), in
 * its own process as a user's would be: one consumer of `group` on `topic` through the SDK, whose
 * handler notes when it started (`Date.now()`, the same machine clock the node fires by) against the
 * fire's `scheduledAt` and returns at once; it reports over IPC as sampleReporter.ts says.
 *
 *   fork('dist/scripts/bench/latencySubscriber.js', [url, group, topic])
 */
const [url, group, topic] = process.argv.slice(2);
if (!url || !group || !topic || !process.send) {
  console.error('usage (forked with IPC): latencySubscriber.js <node url> <group> <topic>');
  process.exit(2);
}

const subscription = subscribe(
  { url, group, topics: [topic], onError: (error) => reporter.error(error.message) },
  (fire) => reporter.handled(fire.fireId, Date.parse(fire.scheduledAt)),
);
const reporter = sampleReporter({
  ready: subscription.ready,
  close: () => subscription.close(),
  what: 'the subscription',
});
