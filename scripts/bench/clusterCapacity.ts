import { createLocalCluster } from '../cluster/localCluster.js';
import { startEnsemble } from '../zk/ensemble.js';
import { benchDir, percentile, round1, sleep, windowOf } from './fixtures.js';
import type { Result } from './scenarios.js';
import { applyLoad } from './firingPhase.js';
import { childrenOf, startSubscriber, watchUntil, watchedPids, type Subscriber } from './userProcesses.js';

const TOPIC = 'bench.cluster-capacity';

/**
 * `cluster-capacity` (issue 10, goal 7): capacity's spread load on a cluster — a private 3-server
 * ZooKeeper ensemble, three `kairos start` processes (read side on, as `npm start`) on one shared
 * SQLite log, `tasks` tasks every second created with `kairos apply -f` on the first node, one SDK
 * subscriber connected to the first node (the consumer relay brings it the fires of the tasks the
 * others hold). 15 s for the cluster to settle (the leader balances the slots by load once the tasks
 * exist), then `measureMs` measured: handler-observed lateness, as in `capacity`.
 */
export const clusterCapacity = async (tasks: number, quick: boolean): Promise<Result> => {
  const on = await clusterPhase(tasks, quick, true);
  const off = await clusterPhase(tasks, quick, false);
  return { ...on, ...off, scenario: `${on.scenario as string}; then the same with KAIROS_READ_SIDE=off` };
};

const clusterPhase = async (tasks: number, quick: boolean, readSide: boolean): Promise<Result> => {
  const measureMs = quick ? 10_000 : 30_000;
  const ensemble = await startEnsemble();
  const cluster = createLocalCluster({
    zk: `${ensemble.connectionString}/kairos/capacity`,
    sessionTimeout: '5s',
    env: { KAIROS_READ_SIDE: readSide ? 'on' : 'off' },
  });
  const dir = benchDir();
  let subscriber: Subscriber | undefined;
  try {
    const nodes = await Promise.all([cluster.add(), cluster.add(), cluster.add()]);
    const first = nodes[0]!;
    subscriber = await startSubscriber(first.url, 'bench', TOPIC);
    const apply = await applyLoad(first.url, dir.path, { tasks, ticks: 'spread' }, TOPIC);

    await sleep(15_000);
    const from = Date.now();
    const to = from + measureMs;
    // The nodes' CPU with their read sides', their RSS alone (as the single-node table gives it).
    const withReadSides = watchedPids(...nodes.flatMap((n) => [n.pid, ...childrenOf(n.pid)]));
    const seen = await watchUntil(
      {
        nodes: { cpuMs: withReadSides.cpuMs, rssMib: watchedPids(...nodes.map((n) => n.pid)).rssMib },
        subscriber: watchedPids(subscriber.child.pid ?? -1),
      },
      to,
    );
    await sleep(3_000);
    await subscriber.stop();

    const { lateness, handled } = windowOf(subscriber.samples, from, to);
    const name = `3 nodes, ${tasks} spread, read side ${readSide ? 'on' : 'off'}`;
    return {
      scenario: `cluster-capacity: 3 kairos start (read side on) on one shared SQLite log, ZooKeeper ensemble of 3, ${tasks} tasks every 1s created with kairos apply -f, one SDK subscriber on the first node; ${measureMs / 1000}s measured after 15s`,
      [`${name}: handled/s (expected)`]: `${Math.round(handled / (measureMs / 1000))} (${tasks})`,
      [`${name}: lateness p50 / p99 / max ms`]: `${percentile(lateness, 50)} / ${percentile(lateness, 99)} / ${lateness.at(-1) ?? Number.NaN}`,
      [`${name}: handler runs for a fire already handled`]: subscriber.duplicates,
      [`${name}: RSS MiB of the three nodes (max, sum)`]: seen.nodes.rssMib,
      [`${name}: CPU % three nodes (with their read sides) / subscriber`]: `${seen.nodes.cpu} / ${seen.subscriber.cpu}`,
      [`${name}: kairos apply -f s`]: round1(apply.ms / 1000),
    };
  } finally {
    await subscriber?.stop();
    await cluster.stop();
    await ensemble.stop();
    dir.remove();
  }
};
