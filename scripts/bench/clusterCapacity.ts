import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { createLocalCluster } from '../cluster/localCluster.js';
import { startEnsemble } from '../zk/ensemble.js';
import { benchDir, percentile, round1, sleep, windowOf } from './fixtures.js';
import type { Result } from './scenarios.js';
import { childrenOf, cpuMs, rssMib, runCli, startSubscriber, type Subscriber } from './userProcesses.js';

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
    const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const file = join(dir.path, 'tasks.yaml');
    writeFileSync(
      file,
      toYaml({
        tasks: Array.from({ length: tasks }, (_, i) => ({
          id: `load-${i}`,
          schedule: { every: '1s', startAt: new Date(base + Math.floor((i * 1000) / tasks)).toISOString() },
          target: { topic: TOPIC },
          overlap: 'allow',
        })),
      }),
    );
    const apply = await runCli(['--url', first.url, 'apply', '-f', file], {});
    if (apply.code !== 0) throw new Error(`kairos apply exited ${apply.code}:\n${apply.stdout}\n${apply.stderr}`);

    await sleep(15_000);
    const from = Date.now();
    const to = from + measureMs;
    const processes = nodes.flatMap((n) => [n.pid, ...childrenOf(n.pid)]);
    const cpuBefore = processes.map(cpuMs);
    const subscriberPid = subscriber.child.pid ?? -1;
    const subscriberCpu = cpuMs(subscriberPid);
    let rss = 0;
    while (Date.now() < to) {
      rss = Math.max(
        rss,
        nodes.reduce((sum, n) => sum + rssMib(n.pid), 0),
      );
      await sleep(Math.min(1_000, to - Date.now()));
    }
    const share = (now: number, before: number) => Math.round(((now - before) / measureMs) * 100);
    const nodesCpu = processes.reduce((sum, pid, i) => sum + share(cpuMs(pid), cpuBefore[i] as number), 0);
    const handlerCpu = share(cpuMs(subscriberPid), subscriberCpu);
    await sleep(3_000);
    await subscriber.stop();

    const { lateness, handled } = windowOf(subscriber.samples, from, to);
    const name = `3 nodes, ${tasks} spread, read side ${readSide ? 'on' : 'off'}`;
    return {
      scenario: `cluster-capacity: 3 kairos start (read side on) on one shared SQLite log, ZooKeeper ensemble of 3, ${tasks} tasks every 1s created with kairos apply -f, one SDK subscriber on the first node; ${measureMs / 1000}s measured after 15s`,
      [`${name}: handled/s (expected)`]: `${Math.round(handled / (measureMs / 1000))} (${tasks})`,
      [`${name}: lateness p50 / p99 / max ms`]: `${percentile(lateness, 50)} / ${percentile(lateness, 99)} / ${lateness.at(-1) ?? Number.NaN}`,
      [`${name}: handler runs for a fire already handled`]: subscriber.duplicates,
      [`${name}: RSS MiB of the three nodes (max, sum)`]: rss,
      [`${name}: CPU % three nodes (with their read sides) / subscriber`]: `${nodesCpu} / ${handlerCpu}`,
      [`${name}: kairos apply -f s`]: round1(apply.ms / 1000),
    };
  } finally {
    await subscriber?.stop();
    await cluster.stop();
    await ensemble.stop();
    dir.remove();
  }
};
