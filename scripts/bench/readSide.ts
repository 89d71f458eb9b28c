import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { compileConfig } from '../../src/config/config.js';
import { openOfflineReadSide } from '../../src/projections/host/openReadSide.js';
import { SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';
import { freePort, startNodeProcess, type NodeHandle } from '../cluster/localCluster.js';
import { firingPhase, type FiringPhase } from './firingPhase.js';
import { ascending, benchDir, percentile, round1, sleep } from './fixtures.js';
import type { Result } from './scenarios.js';
import { writeSyntheticLog, type SyntheticLog } from './syntheticLog.js';
import { runCli, stopNode } from './userProcesses.js';

/**
 * The read side (issue 9) measured as a user meets it: a real `kairos start` process (with its niced
 * read-side child), its HTTP API, the `kairos` CLI and an SDK subscriber in a process of its own. Logs
 * are written beforehand by syntheticLog.ts; every process and directory a scenario creates is removed
 * when it ends, failed or not.
 */

const MIB = 1_048_576;

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
  const phases: FiringPhase<Rebuilds>[] = [];
  for (const p of plan)
    phases.push(
      await firingPhase(p.name, {
        tasks,
        ticks: 'spread',
        env: { KAIROS_READ_SIDE: p.readSide ? 'on' : 'off' },
        warmMs,
        measureMs,
        ...(p.readSide ? { during: rebuildsUntil } : {}),
      }),
    );

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
    if (p.during) {
      const { rates, unfinished } = p.during;
      const mean = rates.length ? Math.round(rates.reduce((a, b) => a + b, 0) / rates.length) : 0;
      result[`${p.name} rebuilds completed (failed); their mean events/s`] =
        `${p.during.completed} (${p.during.failures}); ${rates.length ? mean : '-'}`;
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
