import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KAIROS_CLI, type NodeHandle } from '../cluster/localCluster.js';
import { sleep } from './fixtures.js';
import type { SubscriberMessage } from './sampleReporter.js';

/**
 * The processes a benchmark runs as a user would — the `kairos` CLI, an SDK subscriber, a node — and
 * what it reads about them from `/proc`.
 */

/** The caller's environment without `KAIROS_*`, as localCluster gives its nodes. */
const baseEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KAIROS_')));

/**
 * Stops a node (SIGTERM, so it closes its read-side process; SIGKILL if that takes over 20 s) and
 * waits until its output pipes are closed: the read-side process writes to them too, and a line it
 * writes after the node has gone would be appended to `<dataDir>/node.log` after the directory is removed.
 */
export const stopNode = async (node: NodeHandle): Promise<void> => {
  const { child } = node;
  const open = [child.stdout, child.stderr].filter((s) => s !== null && !s.closed);
  const closed = Promise.all(open.map((s) => new Promise((resolve) => s?.once('close', resolve))));
  try {
    await node.stop(20_000);
  } catch {
    await node.kill9();
  }
  await Promise.race([closed, sleep(20_000)]);
};

/** Runs the built CLI with `args`; resolves with its exit code, output and wall-clock time. */
export const runCli = (
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> =>
  new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [KAIROS_CLI, ...args], {
      env: { ...baseEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
  });

/** Resident memory of a process (`VmRSS`), in MiB; 0 once it is gone. */
export const rssMib = (pid: number): number => {
  try {
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : 0;
  } catch {
    return 0;
  }
};

/** Pids of the processes whose parent is `pid` (the node's read-side process). */
export const childrenOf = (pid: number): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        // The name (2nd field) is in parentheses and may hold spaces: the parent pid follows its ')'.
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);

export type Subscriber = {
  child: ChildProcess;
  /** Flat [scheduledAt, handledAt, ...] pairs received so far. */
  samples: number[];
  /** Handler runs for a fire the subscriber had handled already (a redelivery that ran again). */
  duplicates: number;
  errors: string[];
  stop(): Promise<void>;
};

/** A business service in its own process (latencySubscriber.ts), ready when this resolves. */
export const startSubscriber = (url: string, group: string, topic: string): Promise<Subscriber> =>
  forkSampler(new URL('./latencySubscriber.js', import.meta.url), [url, group, topic], 'the subscriber');

/**
 * A process that handles fires and reports them as `SubscriberMessage`s over IPC (latencySubscriber.ts,
 * bullmqWorker.ts), ready when this resolves; `label` names it in errors.
 */
export const forkSampler = async (module: URL, args: string[], label: string): Promise<Subscriber> => {
  const child = fork(fileURLToPath(module), args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const samples: number[] = [];
  const errors: string[] = [];
  let duplicates = 0;
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: SubscriberMessage) => {
      if (m.t === 'ready') resolve();
      else if (m.t === 'samples') {
        for (const s of m.samples) samples.push(s);
        duplicates = m.duplicates;
      } else errors.push(m.message);
    });
    void exited.then(() => reject(new Error(`${label} exited before it was ready: ${errors.join('; ')}`)));
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send({ t: 'stop' });
    const late = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(late);
  };
  try {
    await Promise.race([ready, sleep(30_000).then(() => Promise.reject(new Error(`${label} was not ready in 30 s`)))]);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  return {
    child,
    samples,
    errors,
    get duplicates() {
      return duplicates;
    },
    stop,
  };
};

/** CPU time a process has used so far (user + system), in ms; 0 once it is gone. */
export const cpuMs = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime (fields 14 and 15 of stat, 12 and 13 after the name) are in USER_HZ = 100 ticks/s.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
};

/** What a benchmark watches of one or more processes over its measured window. */
export type Watched = { cpuMs: () => number; rssMib: () => number };

/** These processes together (none: nothing, 0 for both). */
export const watchedPids = (...pids: number[]): Watched => ({
  cpuMs: () => pids.reduce((sum, pid) => sum + cpuMs(pid), 0),
  rssMib: () => pids.reduce((sum, pid) => sum + rssMib(pid), 0),
});

/**
 * Until `to`: the peak RSS of each watched one (sampled every second) and the CPU it used meanwhile, in
 * % of one core.
 */
export const watchUntil = async <K extends string>(
  watched: Record<K, Watched>,
  to: number,
): Promise<Record<K, { cpu: number; rssMib: number }>> => {
  const entries = Object.entries(watched) as [K, Watched][];
  const started = Date.now();
  const cpuBefore = entries.map(([, w]) => w.cpuMs());
  const peak = entries.map(() => 0);
  while (Date.now() < to) {
    entries.forEach(([, w], i) => (peak[i] = Math.max(peak[i] as number, w.rssMib())));
    await sleep(Math.min(1_000, to - Date.now()));
  }
  const span = Math.max(1, Date.now() - started);
  return Object.fromEntries(
    entries.map(([key, w], i) => [
      key,
      { cpu: Math.round(((w.cpuMs() - (cpuBefore[i] as number)) / span) * 100), rssMib: peak[i] as number },
    ]),
  ) as Record<K, { cpu: number; rssMib: number }>;
};
