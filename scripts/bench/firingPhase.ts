import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { freePort, startNodeProcess, type NodeHandle } from '../cluster/localCluster.js';
import { benchDir, round1, sleep, windowOf } from './fixtures.js';
import { childrenOf, cpuMs, rssMib, runCli, startSubscriber, stopNode, type Subscriber } from './userProcesses.js';

/** How the tasks' ticks fall: spread evenly over each second, or all on the same instant (cron `* * * * * *`). */
export type TickSpread = 'spread' | 'aligned';

export type FiringPhaseOptions<T> = {
  tasks: number;
  ticks: TickSpread;
  /** The node's environment beyond port, host, data dir and id (`KAIROS_READ_SIDE`, ...). */
  env: Record<string, string>;
  warmMs: number;
  measureMs: number;
  /** Runs through the measured window (a rebuild, say); its result is the phase's `during`. */
  during?: (url: string, until: number, signal: AbortSignal) => Promise<T>;
};

export type FiringPhase<T> = {
  name: string;
  /** Sorted lateness (handler start − scheduled tick) of the fires scheduled in the window, ms. */
  lateness: number[];
  handledPerSecond: number;
  expected: number;
  /** Handler runs, over the whole phase, for a fire the subscriber had handled already. */
  duplicates: number;
  applySeconds: number;
  nodeRssMib: number;
  readSideRssMib: number;
  /** CPU used during the measured window, in % of one core. */
  cpu: { node: number; readSide: number; subscriber: number };
  during: T | null;
};

const TOPIC = 'bench.firing';

/**
 * One load on a fresh node, as a user runs it: `kairos start` (its read-side process as `env` says),
 * one SDK subscriber in its own process whose handler returns at once, `tasks` tasks every second
 * (`overlap: allow`) created with `kairos apply -f`, then `warmMs` of warm-up and `measureMs` measured.
 * The tasks start firing as they are created (their start lies in the past).
 */
export const firingPhase = async <T = never>(name: string, options: FiringPhaseOptions<T>): Promise<FiringPhase<T>> => {
  const dir = benchDir();
  let node: NodeHandle | undefined;
  let subscriber: Subscriber | undefined;
  const abort = new AbortController();
  try {
    node = await startNodeProcess({
      nodeId: 'bench',
      port: await freePort(),
      dataDir: join(dir.path, 'node'),
      env: options.env,
      readyTimeoutMs: 60_000,
    });
    subscriber = await startSubscriber(node.url, 'bench', TOPIC);

    const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const schedule = (i: number) =>
      options.ticks === 'aligned'
        ? { cron: '* * * * * *' }
        : { every: '1s', startAt: new Date(base + Math.floor((i * 1000) / options.tasks)).toISOString() };
    const file = join(dir.path, 'tasks.yaml');
    writeFileSync(
      file,
      toYaml({
        tasks: Array.from({ length: options.tasks }, (_, i) => ({
          id: `load-${i}`,
          schedule: schedule(i),
          target: { topic: TOPIC },
          overlap: 'allow',
        })),
      }),
    );
    const apply = await runCli(['--url', node.url, 'apply', '-f', file], {});
    if (apply.code !== 0) throw new Error(`kairos apply exited ${apply.code}:\n${apply.stdout}\n${apply.stderr}`);

    const from = Date.now() + options.warmMs;
    const to = from + options.measureMs;
    await sleep(from - Date.now());
    const during = options.during ? options.during(node.url, to, abort.signal) : null;
    const readSidePid = childrenOf(node.pid)[0];
    const subscriberPid = subscriber.child.pid ?? -1;
    const cpuBefore = [cpuMs(node.pid), readSidePid ? cpuMs(readSidePid) : 0, cpuMs(subscriberPid)];
    let nodeRss = 0;
    let readSideRss = 0;
    while (Date.now() < to) {
      nodeRss = Math.max(nodeRss, rssMib(node.pid));
      if (readSidePid) readSideRss = Math.max(readSideRss, rssMib(readSidePid));
      await sleep(Math.min(1_000, to - Date.now()));
    }
    const cpuShare = (pid: number | undefined, before: number) =>
      pid ? Math.round(((cpuMs(pid) - before) / options.measureMs) * 100) : 0;
    const cpu = {
      node: cpuShare(node.pid, cpuBefore[0] as number),
      readSide: cpuShare(readSidePid, cpuBefore[1] as number),
      subscriber: cpuShare(subscriberPid, cpuBefore[2] as number),
    };
    // A fire scheduled late in the window is handled a little after it.
    await sleep(3_000);
    abort.abort();
    const done = during ? await during : null;
    await subscriber.stop();

    const { lateness, handled } = windowOf(subscriber.samples, from, to);
    return {
      name,
      lateness,
      handledPerSecond: Math.round(handled / (options.measureMs / 1000)),
      expected: Math.round((options.tasks * options.measureMs) / 1000),
      duplicates: subscriber.duplicates,
      applySeconds: round1(apply.ms / 1000),
      nodeRssMib: nodeRss,
      readSideRssMib: readSideRss,
      cpu,
      during: done,
    };
  } finally {
    abort.abort();
    await subscriber?.stop();
    if (node) await stopNode(node);
    dir.remove();
  }
};
