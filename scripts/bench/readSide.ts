import { spawn, fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { compileConfig } from '../../src/config/config.js';
import { openOfflineReadSide } from '../../src/projections/host/openReadSide.js';
import { SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';
import { freePort, KAIROS_CLI, startNodeProcess, type NodeHandle } from '../cluster/localCluster.js';
import { benchDir, percentile } from './fixtures.js';
import type { SubscriberMessage } from './latencySubscriber.js';
import type { Result } from './scenarios.js';
import { writeSyntheticLog, type SyntheticLog } from './syntheticLog.js';

/**
 * The read side (issue 9) measured as a user meets it: a real `kairos start` process (with its niced
 * read-side child), its HTTP API, the `kairos` CLI and an SDK subscriber in a process of its own. Logs
 * are written beforehand by syntheticLog.ts; every process and directory a scenario creates is removed
 * when it ends, failed or not.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ascending = (a: number, b: number) => a - b;
const MIB = 1_048_576;

/** The caller's environment without `KAIROS_*`, as localCluster gives its nodes. */
const baseEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KAIROS_')));

/** Writes the synthetic log into `<dir>/kairos.db`, where a node started on `dir` finds it. */
const seedLog = async (dir: string, tasks: number): Promise<SyntheticLog> => {
  // synchronous=NORMAL while seeding only: the same file, written sooner; the node opens it with FULL.
  const store = SqliteEventStore.open(join(dir, 'kairos.db'), { synchronous: 'NORMAL' });
  try {
    return await writeSyntheticLog(store, { tasks, firesPerTask: 250, end: Date.now() });
  } finally {
    await store.close();
  }
};

const fileMib = (file: string): number => {
  try {
    return Math.round(statSync(file).size / MIB);
  } catch {
    return 0;
  }
};

type ReadModelsStatus = { position: number; head: number; lag: number; replay: unknown };

const getJson = async <T>(url: string, timeoutMs = 30_000): Promise<T> => {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url} → ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
};

/** Polls `/api/read-models` from now until the models include `head`; resolves with when they did. */
const caughtUp = async (url: string, head: number, timeoutMs: number): Promise<number> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const status = await getJson<ReadModelsStatus>(`${url}/api/read-models`, 5_000);
      if (status.position >= head) return Date.now();
    } catch {
      // The API is not listening yet, or the read-side process is still opening.
    }
    if (Date.now() > deadline) throw new Error(`the read models did not reach position ${head} in ${timeoutMs} ms`);
    await sleep(250);
  }
};

/** Polls `/api/read-models` until the models are less than 1,000 positions behind the log's head. */
const settled = async (url: string, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while ((await getJson<ReadModelsStatus>(`${url}/api/read-models`, 5_000)).lag >= 1_000) {
    if (Date.now() > deadline) throw new Error(`the read models stayed 1,000 or more behind for ${timeoutMs} ms`);
    await sleep(250);
  }
};

/**
 * Stops a node (SIGTERM, so it closes its read-side process; SIGKILL if that takes over 20 s) and
 * waits until its output pipes are closed: the read-side process writes to them too, and a line it
 * writes after the node has gone would be appended to `<dataDir>/node.log` after the directory is removed.
 */
const stopNode = async (node: NodeHandle): Promise<void> => {
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

/** `count` sequential GETs of `path(i)`; each one's HTTP round trip in ms and what `rows` counts in its answer. */
const timeQueries = async (
  url: string,
  count: number,
  path: (i: number) => string,
  rows: (body: unknown) => number,
): Promise<{ ms: number[]; rows: number[] }> => {
  const ms: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    const res = await fetch(`${url}${path(i)}`);
    const text = await res.text();
    const elapsed = performance.now() - t;
    if (!res.ok) throw new Error(`GET ${path(i)} → ${res.status}: ${text.slice(0, 500)}`);
    ms.push(elapsed);
    counts.push(rows(JSON.parse(text)));
  }
  return { ms, rows: counts };
};

const latencies = (prefix: string, { ms, rows }: { ms: number[]; rows: number[] }): Result => {
  const sorted = [...ms].sort(ascending);
  return {
    [`${prefix} p50 ms`]: round1(percentile(sorted, 50)),
    [`${prefix} p99 ms`]: round1(percentile(sorted, 99)),
    [`${prefix} max ms`]: round1(sorted.at(-1) ?? Number.NaN),
    [`${prefix} rows (min–max)`]: `${Math.min(...rows)}–${Math.max(...rows)}`,
    // Which of the queries were slow (the first one meets a cold cache): `#index: ms`.
    [`${prefix} slowest`]: ms
      .map((t, i) => [i, t] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([i, t]) => `#${i}: ${round1(t)}`)
      .join(', '),
  };
};

const round1 = (n: number): number => Math.round(n * 10) / 10;

/**
 * `read-query`: a node started on a log of `tasks` × 250 fires over the last 48 h (≥ 5,000,000 events
 * for 10,000 tasks) builds its read models at start; once they include the whole log, three queries
 * are each asked 100 times in a row over HTTP.
 */
export const readQuery = async (tasks: number): Promise<Result> => {
  const dir = benchDir();
  let node: NodeHandle | undefined;
  try {
    const log = await seedLog(dir.path, tasks);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const spawned = Date.now();
    const projected = caughtUp(url, log.head, 60 * 60_000);
    node = await startNodeProcess({ nodeId: 'bench-node', port, dataDir: dir.path, readyTimeoutMs: 60 * 60_000 });
    const ready = Date.now();
    const caught = await projected;
    // The node has written more since it started (claims, fires, timeouts): the models may still be on it.
    const status = await getJson<ReadModelsStatus>(`${url}/api/read-models`);

    const failed = await timeQueries(
      url,
      100,
      () => '/api/fires?status=failed&since=24h&limit=100',
      (b) => (b as { fires: unknown[] }).fires.length,
    );
    const ofTask = await timeQueries(
      url,
      100,
      // A different task each time, spread over all of them.
      (i) => `/api/fires?status=failed&since=24h&task=${log.taskIds[(i * 97) % log.taskIds.length]}`,
      (b) => (b as { fires: unknown[] }).fires.length,
    );
    const failing = await timeQueries(
      url,
      100,
      () => '/api/tasks?failing=true&limit=100',
      (b) => (b as { tasks: unknown[] }).tasks.length,
    );
    if (Math.min(...failed.rows) === 0) throw new Error('GET /api/fires?status=failed&since=24h returned no rows');
    // Again once the models have also taken in what the node wrote since its start: the read side idle.
    await settled(url, 10 * 60_000);
    const failedSettled = await timeQueries(
      url,
      100,
      () => '/api/fires?status=failed&since=24h&limit=100',
      (b) => (b as { fires: unknown[] }).fires.length,
    );
    const ofTaskSettled = await timeQueries(
      url,
      100,
      (i) => `/api/fires?status=failed&since=24h&task=${log.taskIds[(i * 89 + 13) % log.taskIds.length]}`,
      (b) => (b as { fires: unknown[] }).fires.length,
    );
    const seconds = (caught - spawned) / 1000;
    return {
      scenario: `read-query: ${tasks} tasks, ${log.events} events over 48 h (${log.failed} failed fires)`,
      'log written s': round1(log.ms / 1000),
      'log MiB': fileMib(join(dir.path, 'kairos.db')),
      'node ready s': round1((ready - spawned) / 1000),
      'read models caught up s': round1(seconds),
      'read models events/s': Math.round(log.head / seconds),
      'read db MiB': fileMib(join(dir.path, 'read.db')),
      'read models at first query: position / head': `${status.position} / ${status.head}`,
      ...latencies('fires status=failed since=24h limit=100:', failed),
      ...latencies('fires status=failed since=24h task=<one>:', ofTask),
      ...latencies('tasks failing=true limit=100:', failing),
      ...latencies('settled (lag < 1,000): fires status=failed since=24h limit=100:', failedSettled),
      ...latencies('settled: fires status=failed since=24h task=<one>:', ofTaskSettled),
    };
  } finally {
    if (node) await stopNode(node);
    dir.remove();
  }
};

/** Runs the built CLI with `args`; resolves with its exit code, output and wall-clock time. */
const runCli = (
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

type ReplayJson = { progress: { events: number; position: number; elapsedMs: number; eventsPerSecond: number } };

/**
 * The same rebuild `kairos replay` runs when no node answers (`openOfflineReadSide(...).replay({})`,
 * read models and settings as the configuration gives them), called in this process, without the live
 * models following the log: the rebuild alone.
 */
const replayInProcess = async (dataDir: string): Promise<{ progress: ReplayJson['progress']; ms: number }> => {
  const settings = compileConfig({ flags: { dataDir } }).readSide;
  if (!settings) throw new Error('the configuration has no read side');
  const file = join(dataDir, 'kairos.db');
  const store = SqliteEventStore.open(file, { writer: 'inline' });
  try {
    const readSide = openOfflineReadSide(store, `sqlite:${file}`, settings);
    try {
      const started = performance.now();
      const { progress } = await readSide.replay({});
      return { progress, ms: performance.now() - started };
    } finally {
      readSide.close('the benchmark is over');
    }
  } finally {
    await store.close();
  }
};

const removeReadDb = (dataDir: string): void => {
  for (const suffix of ['', '-wal', '-shm', '.lock']) rmSync(join(dataDir, `read.db${suffix}`), { force: true });
};

/**
 * `read-rebuild`: with no node running, `kairos replay` (its own process) rebuilds every read model of
 * a data directory from its log, timed from spawn to exit; then, for comparison, the same rebuild
 * called in-process without the live models following the log (see `replayInProcess`).
 */
export const readRebuild = async (tasks: number): Promise<Result> => {
  const dir = benchDir();
  try {
    const log = await seedLog(dir.path, tasks);
    const result: Result = {
      scenario: `read-rebuild: kairos replay (offline) of ${log.events} events (${tasks} tasks)`,
      'log MiB': fileMib(join(dir.path, 'kairos.db')),
    };
    // Port 1 (tcpmux) has no listener: the CLI finds no node and rebuilds from the data directory itself.
    const run = await runCli(['replay', '--json'], { KAIROS_URL: 'http://127.0.0.1:1', KAIROS_DATA_DIR: dir.path });
    if (run.code === 0) {
      const { progress } = JSON.parse(run.stdout) as ReplayJson;
      if (progress.position < log.head)
        throw new Error(`kairos replay stopped at position ${progress.position} of ${log.head}`);
      Object.assign(result, {
        'CLI: events': progress.events,
        'CLI: seconds (as reported)': round1(progress.elapsedMs / 1000),
        'CLI: events/s (as reported)': progress.eventsPerSecond,
        'CLI: seconds (wall clock, spawn to exit)': round1(run.ms / 1000),
        'CLI: events/s (wall clock)': Math.round(progress.events / (run.ms / 1000)),
        'read db MiB': fileMib(join(dir.path, 'read.db')),
      });
    } else {
      // Reported, not thrown: the in-process figure below still says what the rebuild itself costs.
      const lines = run.stderr.trim().split('\n');
      const lastProgress = lines.filter((l) => l.startsWith('replay:')).at(-1) ?? '(no progress line)';
      const error = lines.find((l) => l.startsWith('error:')) ?? lines.at(-1) ?? '';
      result['CLI: FAILED'] =
        `exit ${run.code} after ${round1(run.ms / 1000)} s (wall clock); last progress "${lastProgress}"; ${error}`;
    }
    removeReadDb(dir.path);
    const inProcess = await replayInProcess(dir.path);
    Object.assign(result, {
      'in-process ReadSide.replay: events': inProcess.progress.events,
      'in-process: seconds': round1(inProcess.ms / 1000),
      'in-process: events/s (as reported)': inProcess.progress.eventsPerSecond,
      'in-process read db MiB': fileMib(join(dir.path, 'read.db')),
    });
    return result;
  } finally {
    dir.remove();
  }
};

/** Resident memory of a process (`VmRSS`), in MiB; 0 once it is gone. */
const rssMib = (pid: number): number => {
  try {
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : 0;
  } catch {
    return 0;
  }
};

/** Pids of the processes whose parent is `pid` (the node's read-side process). */
const childrenOf = (pid: number): number[] =>
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

type Subscriber = {
  child: ChildProcess;
  /** Flat [scheduledAt, handledAt, ...] pairs received so far. */
  samples: number[];
  errors: string[];
  stop(): Promise<void>;
};

const startSubscriber = async (url: string, group: string, topic: string): Promise<Subscriber> => {
  const child = fork(fileURLToPath(new URL('./latencySubscriber.js', import.meta.url)), [url, group, topic], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const samples: number[] = [];
  const errors: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: SubscriberMessage) => {
      if (m.t === 'ready') resolve();
      else if (m.t === 'samples') for (const s of m.samples) samples.push(s);
      else errors.push(m.message);
    });
    void exited.then(() => reject(new Error(`the subscriber exited before it was ready: ${errors.join('; ')}`)));
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send({ t: 'stop' });
    const late = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(late);
  };
  try {
    await Promise.race([
      ready,
      sleep(30_000).then(() => Promise.reject(new Error('the subscriber was not ready in 30 s'))),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  return { child, samples, errors, stop };
};

type Rebuilds = {
  completed: number;
  failures: number;
  /** events/s of each completed rebuild, as it reported. */
  rates: number[];
  /** The last progress of the rebuild still running at the end, if any. */
  unfinished: RebuildProgressJson | null;
};
type RebuildProgressJson = ReplayJson['progress'] & { head: number };

/**
 * Keeps one full rebuild (`POST /api/read-models/replay`, all models) running until `until`: the next
 * starts as soon as one finishes. Resolves with the rebuilds that completed and their rates.
 */
const rebuildsUntil = async (url: string, until: number, abort: AbortSignal): Promise<Rebuilds> => {
  const rebuilds: Rebuilds = { completed: 0, failures: 0, rates: [], unfinished: null };
  const decoder = new TextDecoder();
  while (Date.now() < until && !abort.aborted) {
    let last: RebuildProgressJson | null = null;
    try {
      const res = await fetch(`${url}/api/read-models/replay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
        signal: abort,
      });
      if (!res.ok || !res.body) throw new Error(`POST /api/read-models/replay → ${res.status}`);
      let buffered = '';
      let outcome: 'result' | 'error' | null = null;
      // NDJSON: progress lines while it runs, then one result (or error) line.
      for await (const chunk of res.body) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines.filter((l) => l.trim() !== '')) {
          const message = JSON.parse(line) as { progress?: RebuildProgressJson; result?: ReplayJson; error?: unknown };
          if (message.progress) last = message.progress;
          if (message.result) {
            outcome = 'result';
            rebuilds.rates.push(message.result.progress.eventsPerSecond);
          }
          if (message.error) outcome = 'error';
        }
      }
      if (outcome === 'result') rebuilds.completed++;
      else rebuilds.failures++;
    } catch {
      // Aborted at the end of the window (the node goes on with it until it stops), or the node is gone.
      if (abort.aborted) rebuilds.unfinished = last;
      else rebuilds.failures++;
    }
  }
  return rebuilds;
};

/** CPU time a process has used so far (user + system), in ms; 0 once it is gone. */
const cpuMs = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime (fields 14 and 15 of stat, 12 and 13 after the name) are in USER_HZ = 100 ticks/s.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
};

type PhaseResult = {
  name: string;
  /** Sorted lateness of the fires scheduled in the window, ms. */
  lateness: number[];
  handledPerSecond: number;
  expected: number;
  applySeconds: number;
  nodeRssMib: number;
  readSideRssMib: number;
  /** CPU used during the measured window, in % of one core. */
  cpu: { node: number; readSide: number; subscriber: number };
  rebuilds: Rebuilds | null;
};

const TOPIC = 'bench.lateness';

/**
 * One phase of `read-lateness`: a fresh node (read side on or off), one SDK subscriber, `tasks` tasks
 * `every: 1s` spread over the second created with `kairos apply`, `warmMs` of warm-up and `measureMs`
 * measured. With `rebuild`, a full rebuild of the read models runs during the whole measured window.
 */
export const latenessPhase = async (
  name: string,
  options: { tasks: number; readSide: boolean; rebuild: boolean; warmMs: number; measureMs: number },
): Promise<PhaseResult> => {
  const dir = benchDir();
  let node: NodeHandle | undefined;
  let subscriber: Subscriber | undefined;
  const abort = new AbortController();
  try {
    node = await startNodeProcess({
      nodeId: 'bench',
      port: await freePort(),
      dataDir: join(dir.path, 'node'),
      env: { KAIROS_READ_SIDE: options.readSide ? 'on' : 'off' },
      readyTimeoutMs: 60_000,
    });
    subscriber = await startSubscriber(node.url, 'bench', TOPIC);

    // Ticks spread evenly over the second (as scenarios.ts's lateness); startAt in the past only sets
    // the phase, a task fires its first tick after it is created.
    const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const file = join(dir.path, 'tasks.yaml');
    writeFileSync(
      file,
      toYaml({
        tasks: Array.from({ length: options.tasks }, (_, i) => ({
          id: `lateness-${i}`,
          schedule: {
            every: '1s',
            startAt: new Date(base + Math.floor((i * 1000) / options.tasks)).toISOString(),
          },
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
    const rebuilds = options.rebuild ? rebuildsUntil(node.url, to, abort.signal) : null;
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
    const rebuilt = rebuilds ? await rebuilds : null;
    await subscriber.stop();

    const lateness: number[] = [];
    let handled = 0;
    const s = subscriber.samples;
    for (let i = 0; i < s.length; i += 2) {
      const scheduled = s[i] as number;
      const at = s[i + 1] as number;
      if (scheduled >= from && scheduled < to) lateness.push(at - scheduled);
      if (at >= from && at < to) handled++;
    }
    lateness.sort(ascending);
    return {
      name,
      lateness,
      handledPerSecond: Math.round(handled / (options.measureMs / 1000)),
      expected: Math.round((options.tasks * options.measureMs) / 1000),
      applySeconds: round1(apply.ms / 1000),
      nodeRssMib: nodeRss,
      readSideRssMib: readSideRss,
      cpu,
      rebuilds: rebuilt,
    };
  } finally {
    abort.abort();
    await subscriber?.stop();
    if (node) await stopNode(node);
    dir.remove();
  }
};

/**
 * `read-lateness`: fire lateness seen by an SDK subscriber with the read side off, and on with a
 * rebuild running throughout, in alternating phases (off, on, off, on) of one run, each on a fresh
 * node and data directory.
 */
export const readLateness = async (quick: boolean): Promise<Result> => {
  const tasks = 2_500;
  const warmMs = quick ? 5_000 : 10_000;
  const measureMs = quick ? 10_000 : 30_000;
  const plan = [
    { name: 'off-1', readSide: false },
    { name: 'on-1', readSide: true },
    { name: 'off-2', readSide: false },
    { name: 'on-2', readSide: true },
  ];
  const phases: PhaseResult[] = [];
  for (const p of plan)
    phases.push(await latenessPhase(p.name, { tasks, readSide: p.readSide, rebuild: p.readSide, warmMs, measureMs }));

  const result: Result = {
    scenario: `read-lateness: ${tasks} tasks every 1s (spread), SDK subscriber; read side off / on with a rebuild running; ${warmMs / 1000}s warm-up + ${measureMs / 1000}s measured per phase`,
  };
  for (const p of phases) {
    const l = p.lateness;
    result[`${p.name} handled/s`] = p.handledPerSecond;
    result[`${p.name} fires measured (of expected)`] = `${l.length} (${p.expected})`;
    result[`${p.name} lateness p50/p99/max ms`] =
      `${percentile(l, 50)} / ${percentile(l, 99)} / ${l.at(-1) ?? Number.NaN}`;
    result[`${p.name} RSS MiB node / read side (max)`] = `${p.nodeRssMib} / ${p.readSideRssMib || '-'}`;
    result[`${p.name} CPU % node / read side / subscriber`] =
      `${p.cpu.node} / ${p.cpu.readSide || '-'} / ${p.cpu.subscriber}`;
    if (p.rebuilds) {
      const { rates, unfinished } = p.rebuilds;
      const mean = rates.length ? Math.round(rates.reduce((a, b) => a + b, 0) / rates.length) : 0;
      result[`${p.name} rebuilds completed (failed); their mean events/s`] =
        `${p.rebuilds.completed} (${p.rebuilds.failures}); ${rates.length ? mean : '-'}`;
      if (unfinished)
        result[`${p.name} rebuild running at the end`] =
          `${unfinished.events} events, position ${unfinished.position} of ${unfinished.head}, ${unfinished.eventsPerSecond} events/s`;
    }
    result[`${p.name} kairos apply s`] = p.applySeconds;
  }
  const pooled = (on: boolean) =>
    phases
      .filter((p) => p.name.startsWith(on ? 'on' : 'off'))
      .flatMap((p) => p.lateness)
      .sort(ascending);
  const offP99 = percentile(pooled(false), 99);
  const onP99 = percentile(pooled(true), 99);
  const change = ((onP99 - offP99) / offP99) * 100;
  result['verdict: p99 on vs off (pooled phases)'] =
    `${onP99} vs ${offP99} ms: ${change >= 0 ? '+' : ''}${change.toFixed(0)} % — ${change <= 10 ? 'within' : 'NOT within'} 10 %`;
  return result;
};
