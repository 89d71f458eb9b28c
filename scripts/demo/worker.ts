import { subscribe } from '../../src/client/index.js';
import { isEsdbUrl } from '../../src/store/openEventStore.js';

/**
 * The business service of the README's cluster tour: one consumer of group `demo` on topic `demo.tick`,
 * connected to every node named on the command line (one would do, since nodes relay fires to each
 * other; several keep it fed when one of them dies). Once a second it prints how many fires it handled,
 * how many of them were catch-ups, and the worst lateness (fired − scheduled) among them.
 *
 *   node dist/scripts/demo/worker.js http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083
 *
 * Given an EventStoreDB URL instead, it runs in direct mode as group `demo-direct`, reading the fires
 * from the log (docs/subscribers.md, "Direct mode"):
 *
 *   node dist/scripts/demo/worker.js 'esdb://127.0.0.1:2113?tls=false'
 */
const urls = process.argv.slice(2);
if (urls.length === 0) {
  console.error('usage: node dist/scripts/demo/worker.js <node url> [<node url> ...] | <esdb:// url>');
  process.exit(2);
}

let fires = 0;
let catchUps = 0;
let worstLateness = 0;

const direct = isEsdbUrl(urls[0]!);
const source = direct ? { store: urls[0]!, group: 'demo-direct' } : { url: urls, group: 'demo' };
const subscription = subscribe({ ...source, topics: ['demo.tick'] }, (fire) => {
  fires++;
  if (fire.trigger === 'catch-up') catchUps++;
  worstLateness = Math.max(worstLateness, Date.parse(fire.firedAt) - Date.parse(fire.scheduledAt));
});

const report = setInterval(() => {
  const time = new Date().toISOString().slice(11, 19);
  console.log(`${time} fires ${fires} (catch-up ${catchUps}), max lateness ${worstLateness} ms`);
  fires = catchUps = worstLateness = 0;
}, 1_000);

const stop = (): void => {
  clearInterval(report);
  void subscription.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
