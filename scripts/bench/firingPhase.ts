import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { freePort, startNodeProcess, type NodeHandle } from '../cluster/localCluster.js';
import { benchDir, round1, sleep, windowOf } from './fixtures.js';
import {
  childrenOf,
  runCli,
  startSubscriber,
  stopNode,
  watchUntil,
  watchedPids,
  type Subscriber,
} from './userProcesses.js';

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
 * `tasks` tasks every second on `topic` (`overlap: allow`), spread over the second or all on the same
 * instant, created through `kairos apply -f` on the node at `url`. Their start lies a minute in the past:
 * they fire from the moment they exist. Resolves with the CLI's run.
 */
export const applyLoad = async (
  url: string,
  dir: string,
  load: { tasks: number; ticks: TickSpread },
  topic: string,
) => {
  const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
  const schedule = (i: number) =>
    load.ticks === 'aligned'
      ? { cron: '* * * * * *' }
      : { every: '1s', startAt: new Date(base + Math.floor((i * 1000) / load.tasks)).toISOString() };
  const file = join(dir, 'tasks.yaml');
  writeFileSync(
    file,
    toYaml({
      tasks: Array.from({ length: load.tasks }, (_, i) => ({
        id: `load-${i}`,
        schedule: schedule(i),
        target: { topic },
        overlap: 'allow',
      })),
    }),
  );
  const apply = await runCli(['--url', url, 'apply', '-f', file], {});
  if (apply.code !== 0) throw new Error(`kairos apply exited ${apply.code}:\n${apply.stdout}\n${apply.stderr}`);
  return apply;
};

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

    const apply = await applyLoad(node.url, dir.path, options, TOPIC);

    const from = Date.now() + options.warmMs;
    const to = from + options.measureMs;
    await sleep(from - Date.now());
    const during = options.during ? options.during(node.url, to, abort.signal) : null;
    const seen = await watchUntil(
      {
        node: watchedPids(node.pid),
        readSide: watchedPids(...childrenOf(node.pid).slice(0, 1)),
        subscriber: watchedPids(subscriber.child.pid ?? -1),
      },
      to,
    );
    const cpu = { node: seen.node.cpu, readSide: seen.readSide.cpu, subscriber: seen.subscriber.cpu };
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
      nodeRssMib: seen.node.rssMib,
      readSideRssMib: seen.readSide.rssMib,
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
