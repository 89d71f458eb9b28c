import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { type LocalCluster, type NodeHandle, createLocalCluster } from '../../../scripts/cluster/localCluster.js';
import { type Ensemble, startEnsemble } from '../../../scripts/zk/ensemble.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { openEventStore } from '../../../src/store/openEventStore.js';

/** Short, so that faults resolve within seconds; the servers allow sessions down to 1 s (scripts/zk). */
export const SESSION_TIMEOUT_MS = 2_000;

/**
 * What this 2-core CI box adds on top of a bound the design states: three ZooKeeper JVMs, three or four
 * Node processes and the test share two cores with other suites running at the same time, so a process
 * can wait hundreds of milliseconds for a core; the servers also detect expiry on their 500 ms tick.
 */
export const CI_TOLERANCE_MS = 1_500;

/** Tasks of the chaos suite: every second, late ticks all fired, overlap allowed — so "missed" is well defined. */
export const taskSpec = (id: string) => ({
  id,
  schedule: { every: '1s' },
  target: { topic: 'chaos.ticks' },
  overlap: 'allow',
  misfire: { policy: 'fire-all', maxCatchUp: 1000 },
});

export type Fire = {
  taskId: string;
  fireId: string;
  scheduledAt: number;
  firedAt: number;
  node: string;
  epoch: number;
  attempt: number;
  trigger: string;
  /** Global log position: the order in which the store accepted the fires. */
  position: number;
};

export type Ownership = { taskId: string; type: string; node: string; epoch: number; position: number };

/** The shared log, read incrementally from the store file itself (not through a node, which may be down). */
export class SharedLog {
  readonly fires: Fire[] = [];
  readonly ownerships: Ownership[] = [];
  readonly types = new Map<string, number>();
  #after = 0n;

  constructor(readonly store: EventStore) {}

  /** Position of the last event read. */
  get position(): number {
    return Number(this.#after);
  }

  async sync(): Promise<this> {
    for (;;) {
      const page = await this.store.readAll({ after: this.#after, maxCount: 10_000 });
      for (const e of page) {
        const d = e.data as Record<string, unknown>;
        this.types.set(e.type, (this.types.get(e.type) ?? 0) + 1);
        if (e.type === 'TaskFired')
          this.fires.push({
            taskId: d['taskId'] as string,
            fireId: d['fireId'] as string,
            scheduledAt: Date.parse(d['scheduledAt'] as string),
            firedAt: Date.parse(d['firedAt'] as string),
            node: d['node'] as string,
            epoch: d['epoch'] as number,
            attempt: d['attempt'] as number,
            trigger: d['trigger'] as string,
            position: Number(e.position),
          });
        else if (e.type === 'TaskAssigned' || e.type === 'TaskReassigned' || e.type === 'TaskReleased')
          this.ownerships.push({
            taskId: d['taskId'] as string,
            type: e.type,
            node: d['node'] as string,
            epoch: d['epoch'] as number,
            position: Number(e.position),
          });
      }
      const last = page.at(-1);
      if (!last) return this;
      this.#after = last.position;
    }
  }

  /** First-attempt fires of the schedule (the ones "missed" and "duplicate" are about). */
  scheduled(): Fire[] {
    return this.fires.filter((f) => f.attempt === 1 && (f.trigger === 'schedule' || f.trigger === 'catch-up'));
  }

  /** The node whose fire of `taskId` came last before `at` (the owner at that time). */
  ownerAt(taskId: string, at: number): string | undefined {
    return this.scheduled()
      .filter((f) => f.taskId === taskId && f.firedAt < at)
      .at(-1)?.node;
  }
}

/**
 * Every task's ticks, from its first to its last fire, present exactly once and one second apart, and
 * the last one at or after `through` (a task that silently stopped firing is a loss too). Returns the
 * problems found, so a failure shows them all.
 */
export const tickProblems = (log: SharedLog, taskIds: readonly string[], through: number): string[] => {
  const problems: string[] = [];
  const byTask = new Map<string, Fire[]>(taskIds.map((id) => [id, []]));
  for (const f of log.scheduled()) byTask.get(f.taskId)?.push(f);
  for (const [taskId, fires] of byTask) {
    const ticks = fires.map((f) => f.scheduledAt).sort((a, b) => a - b);
    if (ticks.length === 0) {
      problems.push(`${taskId}: never fired`);
      continue;
    }
    for (let i = 1; i < ticks.length; i++) {
      const gap = ticks[i]! - ticks[i - 1]!;
      if (gap === 0) {
        const twice = fires.filter((f) => f.scheduledAt === ticks[i]);
        problems.push(
          `${taskId}: tick ${iso(ticks[i]!)} fired twice: ${twice.map((f) => `${f.node}@${f.epoch} pos ${f.position}`).join(', ')}`,
        );
      } else if (gap !== 1_000) problems.push(`${taskId}: ${gap / 1_000 - 1} tick(s) lost after ${iso(ticks[i - 1]!)}`);
    }
    if (ticks.at(-1)! < through) problems.push(`${taskId}: last tick ${iso(ticks.at(-1)!)} before ${iso(through)}`);
  }
  return problems;
};

export const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Fires of ticks from `since` on handled past the misfire threshold (1 s): what the policy counts as
 * missed, caught up here (`catch-up`). A crash or an outage makes some; a graceful change of membership
 * must make none. (Before a scenario's fault, the nodes' own start-up is not what it is about.)
 */
export const lateFires = (fires: readonly Fire[], since: number): string[] =>
  fires
    .filter((f) => f.trigger === 'catch-up' && f.scheduledAt >= since)
    .map((f) => `${f.taskId} ${iso(f.scheduledAt)} by ${f.node}@${f.epoch} at ${iso(f.firedAt)}`);

/** The largest `firedAt - scheduledAt` of the ticks from `since` on. */
export const maxLateness = (fires: readonly Fire[], since: number): number =>
  Math.max(0, ...fires.filter((f) => f.scheduledAt >= since).map((f) => f.firedAt - f.scheduledAt));

/** Polls `condition` (after syncing the log) every 200 ms until it holds; fails naming `what` after `timeoutMs`. */
export const waitFor = async (
  log: SharedLog,
  condition: (log: SharedLog) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition(await log.sync())) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
};

/** Waits until, within the last 2 s, every task has fired and every one of `nodes` nodes has fired. */
export const waitForAllFiring = (log: SharedLog, tasks: readonly string[], nodes: number): Promise<void> =>
  waitFor(
    log,
    (l) => {
      const recent = l.scheduled().filter((f) => f.firedAt > Date.now() - 2_000);
      return (
        new Set(recent.map((f) => f.taskId)).size === tasks.length && new Set(recent.map((f) => f.node)).size === nodes
      );
    },
    `all tasks firing, on ${nodes} nodes`,
  );

/**
 * Waits until no task has changed owner for `quietMs`: after tasks are created the leader evens the slots
 * out on its next housekeeping pass (every 5 s), and a fault injected meanwhile would mix the two moves.
 */
export const waitForSteadyOwnership = async (log: SharedLog, quietMs = 6_000, timeoutMs = 40_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const before = (await log.sync()).ownerships.length;
    await new Promise((resolve) => setTimeout(resolve, quietMs));
    if ((await log.sync()).ownerships.length === before) return;
    if (Date.now() > deadline) throw new Error(`task ownership still changing after ${timeoutMs} ms`);
  }
};

/** Resolves at wall-clock time `at` (a fault's duration is part of the scenario, not a wait for a condition). */
export const until = (at: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

export const createTasks = async (node: NodeHandle, count: number, prefix = 'task'): Promise<string[]> => {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  for (const id of ids) {
    const res = await fetch(`${node.url}/api/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(taskSpec(id)),
    });
    if (!res.ok) throw new Error(`POST /api/tasks ${id} → ${res.status}: ${await res.text()}`);
  }
  return ids;
};

/** `kairos verify` on the shared store: exit 0, no violation, every task seen. */
export const expectVerifyClean = async (cluster: LocalCluster, tasks: number): Promise<void> => {
  const { code, report, stderr } = await cluster.verify();
  expect(report.violations, stderr).toEqual([]);
  expect(code, stderr).toBe(0);
  expect(report.ok).toBe(true);
  expect(report.tasks).toBe(tasks);
};

/** Every node's output, for failure messages. */
export const outputs = (cluster: LocalCluster): string =>
  cluster.nodes.map((n) => `--- ${n.nodeId} (${n.state})\n${n.output().slice(-6_000)}`).join('\n');

/**
 * One file's world: a 3-server ZooKeeper ensemble, a cluster of node processes on one shared SQLite log
 * (its `SharedLog` open in this process), all stopped after the file's tests whatever happened.
 * `KAIROS_CHAOS_LOG_LEVEL` sets the nodes' log level (default warn); `KAIROS_CHAOS_DIR` keeps the
 * shared log and every node's `node.log` there after the run, for reading.
 */
export const useChaosCluster = (
  name: string,
  /** Where the shared log lives instead of a SQLite file (e.g. the EventStoreDB stand-in), started per file. */
  shared?: { start(): Promise<{ url: string; stop(): Promise<void> }> },
): { readonly ensemble: Ensemble; readonly cluster: LocalCluster; readonly log: SharedLog } => {
  let world: { ensemble: Ensemble; cluster: LocalCluster; log: SharedLog } | undefined;
  let store: { url: string; stop(): Promise<void> } | undefined;
  beforeAll(async () => {
    const ensemble = await startEnsemble();
    store = await shared?.start();
    const keep = process.env['KAIROS_CHAOS_DIR'];
    const cluster = createLocalCluster({
      ...(store ? { store: store.url } : {}),
      zk: `${ensemble.connectionString}/kairos/chaos`,
      sessionTimeout: `${SESSION_TIMEOUT_MS}ms`,
      logLevel: process.env['KAIROS_CHAOS_LOG_LEVEL'] ?? 'warn',
      ...(keep ? { dir: join(keep, `${name}-${Date.now()}`) } : {}),
    });
    world = { ensemble, cluster, log: new SharedLog(await openEventStore(cluster.store)) };
  });
  afterAll(async () => {
    await world?.log.store.close();
    await world?.cluster.stop();
    await world?.ensemble.stop();
    await store?.stop();
  });
  const get = () => {
    if (!world) throw new Error('the chaos cluster is not running (did beforeAll fail?)');
    return world;
  };
  return {
    get ensemble() {
      return get().ensemble;
    },
    get cluster() {
      return get().cluster;
    },
    get log() {
      return get().log;
    },
  };
};
