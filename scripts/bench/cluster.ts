import type { TaskSpecInput } from '../../domain/task/spec.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { openEventStore } from '../../src/store/openEventStore.js';
import { createLocalCluster, type LocalCluster, type NodeHandle } from '../cluster/localCluster.js';
import { startEnsemble, type Ensemble } from '../zk/ensemble.js';
import { ClusterLog } from './clusterLog.js';
import { ascending, percentile, seedTasks, sleep } from './fixtures.js';
import type { Result } from './scenarios.js';
import { leaderZxid, leasesSettledAt, totalLeases, writesBetween, type ZxidMark } from './zooKeeperProbe.js';

/**
 * Every missed tick caught up, overlap allowed: so "missed" and "twice" are well defined. No consumer
 * subscribes to the topic: each attempt times out after 1 s (a `TaskFailed`), which bounds the fires in
 * flight to about one per task and costs the same two events per fire as an answered one.
 */
const taskSpec = (everyMs: number, startAt: number): Omit<TaskSpecInput, 'id'> => ({
  schedule: { every: everyMs, startAt: new Date(startAt).toISOString() },
  target: { topic: 'bench.cluster' },
  timeout: '1s',
  overlap: 'allow',
  misfire: { policy: 'fire-all', maxCatchUp: 1_000 },
});

const CHROOT = '/kairos/bench';

type Bench = {
  ensemble: Ensemble;
  cluster: LocalCluster;
  log: ClusterLog;
  ids: string[];
  everyMs: number;
  sessionTimeoutMs: number;
  slotCount: number;
};

type ClusterJson = {
  leader: string | null;
  slotCount: number | null;
  slotsPerNode: Record<string, number> | null;
};

const clusterOf = async (node: NodeHandle): Promise<ClusterJson> => {
  const res = await fetch(`${node.url}/api/cluster`);
  if (!res.ok) throw new Error(`GET /api/cluster on ${node.nodeId} → ${res.status}: ${await res.text()}`);
  return (await res.json()) as ClusterJson;
};

/** Slots the node holds by the assignment, as it sees the cluster. */
const slotsOf = async (node: NodeHandle): Promise<number> =>
  (await clusterOf(node)).slotsPerNode?.[node.nodeId] ?? Number.NaN;

const waitUntil = async (check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(1_000);
  }
};

/**
 * Every task fired its last tick but one (3 s allowed for lateness), and no task changed owner meanwhile:
 * the cluster keeps up, and the leader's rebalancing by load after the tasks appeared is over.
 */
const waitSteady = ({ log, ids, everyMs }: Bench, what: string): Promise<void> =>
  waitUntil(
    async () => {
      await log.sync();
      const since = Date.now() - everyMs - 3_000;
      return (
        ids.every((id) => (log.fires.get(id)?.at(-1)?.scheduledAt ?? 0) >= since) &&
        Object.keys(log.reassignedBetween(since, Number.POSITIVE_INFINITY)).length === 0
      );
    },
    `every task firing on time, owners settled (${what})`,
    120_000,
  );

const stats = (prefix: string, sorted: readonly number[]): Result => ({
  [`${prefix} p50 ms`]: percentile(sorted, 50),
  [`${prefix} p99 ms`]: percentile(sorted, 99),
  [`${prefix} max ms`]: sorted.at(-1) ?? Number.NaN,
});

/** ZooKeeper writes from `from` until now, and how many of them the steady state would have made anyway. */
const zkWrites = async ({ ensemble }: Bench, from: ZxidMark, steadyPerSecond: number): Promise<string> => {
  const to = await leaderZxid(ensemble);
  const baseline = Math.round((steadyPerSecond * (to.at - from.at)) / 1_000);
  return `${writesBetween(from, to)} (steady-state share ${baseline})`;
};

/** How late the moved tasks' ticks were in `[from, until]`, and how many the misfire policy caught up (over 1 s late). */
const lateness = (bench: Bench, moved: readonly string[], from: number, until: number) => {
  const fires = bench.log.firesBetween(from, until + 1, moved);
  return {
    catchUps: fires.filter((f) => f.catchUp).length,
    max: Math.max(0, ...fires.map((f) => f.firedAt - f.scheduledAt)),
  };
};

/** The first fire of each moved task on a node `where` accepts, `from` on, ascending. */
const firstFires = (bench: Bench, moved: readonly string[], from: number, where: (node: string) => boolean) =>
  moved
    .map((id) => bench.log.firstFireAfter(id, from, where))
    .filter((f) => f !== undefined)
    .sort((a, b) => a.firedAt - b.firedAt);

const steadyState = async (bench: Bench, ms: number): Promise<{ result: Result; writesPerSecond: number }> => {
  const from = await leaderZxid(bench.ensemble);
  await sleep(ms);
  const to = await leaderZxid(bench.ensemble);
  // Fires decided before `to` reach the log a moment later.
  await sleep(2_000);
  await bench.log.sync();
  const fires = bench.log.firesBetween(from.at, to.at);
  const seconds = (to.at - from.at) / 1_000;
  const writesPerSecond = writesBetween(from, to) / seconds;
  return {
    writesPerSecond,
    result: {
      'steady: fires/s': Math.round(fires.length / seconds),
      ...stats('steady: lateness', fires.map((f) => f.firedAt - f.scheduledAt).sort(ascending)),
      'steady: ownership changes': JSON.stringify(bench.log.reassignedBetween(from.at, to.at)),
      'steady: ZooKeeper writes/s': writesPerSecond.toFixed(1),
    },
  };
};

/**
 * `kill -9` of `victim`. ZooKeeper expires its session at most a session timeout after it last heard
 * from it, survivors lease its slots, and each moved task is claimed at its next tick: the tasks with a
 * tick due before the leases were retaken measure the failover, the others fire on time anyway.
 */
const failover = async (bench: Bench, victim: NodeHandle, steadyWrites: number): Promise<Result> => {
  const { log, ids, sessionTimeoutMs, slotCount } = bench;
  const slots = await slotsOf(victim);
  const zxid = await leaderZxid(bench.ensemble);
  const killedAt = Date.now();
  await victim.kill9();
  const deadline = killedAt + 60_000;
  const expired = await leasesSettledAt(bench.ensemble, CHROOT, (l) => !l.has(victim.nodeId), deadline);
  const leased = await leasesSettledAt(bench.ensemble, CHROOT, (l) => totalLeases(l) === slotCount, deadline);
  await log.sync();
  const moved = ids.filter((id) => log.ownerAt(id, killedAt) === victim.nodeId);
  const survivor = (node: string) => node !== victim.nodeId;
  await waitUntil(
    async () => (await log.sync()) && moved.every((id) => log.firstFireAfter(id, killedAt, survivor)),
    'every moved task firing on a survivor',
    60_000,
  );
  const firsts = firstFires(bench, moved, killedAt, survivor);
  const overdue = firsts.filter((f) => f.scheduledAt < leased.at).map((f) => f.firedAt - killedAt);
  const last = firsts.at(-1)?.firedAt ?? Number.NaN;
  const late = lateness(bench, moved, killedAt, last);
  const target = sessionTimeoutMs + 1_000;
  // The leader's record may be appended after the moved tasks' fires.
  await sleep(2_000);
  await log.sync();
  const left = log.clusterFact('NodeLeft', killedAt, (d) => d['node'] === victim.nodeId);
  return {
    'failover: tasks moved (slots)': `${moved.length} (${slots})`,
    'failover: session expired after ms': expired.at - killedAt,
    'failover: NodeLeft recorded after ms': (left?.at ?? Number.NaN) - killedAt,
    'failover: slots leased again after ms': leased.at - killedAt,
    'failover: moved tasks with a tick due meanwhile': overdue.length,
    ...stats('failover: their first fire', overdue),
    'failover: target ms (session timeout + 1 s)': target,
    'failover: moved tasks over target': overdue.filter((ms) => ms > target).length,
    'failover: ticks caught up': late.catchUps,
    'failover: ZooKeeper writes': await zkWrites(bench, zxid, steadyWrites),
  };
};

/** A fourth node starts; the leader gives it a share of the slots, their owners hand them over. */
const join = async (bench: Bench, steadyWrites: number): Promise<Result> => {
  const { log, ids, slotCount } = bench;
  const zxid = await leaderZxid(bench.ensemble);
  const startedAt = Date.now();
  const joiner = await bench.cluster.add();
  const readyAt = Date.now();
  // Done when the joiner holds leases, every slot is leased, and that lasts 2 s (hand-offs go slot by slot).
  const leased = await leasesSettledAt(
    bench.ensemble,
    CHROOT,
    (l) => (l.get(joiner.nodeId) ?? 0) > 0 && totalLeases(l) === slotCount,
    readyAt + 60_000,
    2_000,
  );
  const onJoiner = (node: string) => node === joiner.nodeId;
  // Its share is complete when no new task started firing on it for a period (each moves at its next tick).
  let count = 0;
  let grewAt = Date.now();
  await waitUntil(
    async () => {
      await log.sync();
      const fired = ids.filter((id) => log.firstFireAfter(id, startedAt, onJoiner)).length;
      if (fired !== count) {
        count = fired;
        grewAt = Date.now();
      }
      return count > 0 && Date.now() - grewAt > bench.everyMs + 2_000;
    },
    `${joiner.nodeId} firing its share of the tasks`,
    60_000,
  );
  const moved = ids.filter((id) => log.firstFireAfter(id, startedAt, onJoiner));
  const last = firstFires(bench, moved, startedAt, onJoiner).at(-1)?.firedAt ?? Number.NaN;
  const late = lateness(bench, moved, startedAt, last);
  await sleep(2_000);
  return {
    'join: ready after ms': readyAt - startedAt,
    'join: tasks moved (slots)': `${moved.length} (${leased.leases.get(joiner.nodeId) ?? 0})`,
    'join: slots leased by the joiner, ms after ready': leased.at - readyAt,
    'join: every moved task fired, ms after ready': last - readyAt,
    'join: ticks caught up': late.catchUps,
    'join: max lateness of moved tasks ms': late.max,
    'join: ZooKeeper writes': await zkWrites(bench, zxid, steadyWrites),
  };
};

/** SIGTERM: the node stops firing, records `TaskReleased`, gives up its leases, drains, exits. */
const gracefulStop = async (bench: Bench, node: NodeHandle, steadyWrites: number): Promise<Result> => {
  const { log, ids, slotCount } = bench;
  const slots = await slotsOf(node);
  const zxid = await leaderZxid(bench.ensemble);
  const stoppedAt = Date.now();
  const leased = leasesSettledAt(
    bench.ensemble,
    CHROOT,
    (l) => !l.has(node.nodeId) && totalLeases(l) === slotCount,
    stoppedAt + 60_000,
  );
  await node.stop();
  const exitedAt = Date.now();
  const { at: leasedAt } = await leased;
  await log.sync();
  const moved = ids.filter((id) => log.ownerAt(id, stoppedAt) === node.nodeId);
  const elsewhere = (n: string) => n !== node.nodeId;
  await waitUntil(
    async () => (await log.sync()) && moved.every((id) => log.firstFireAfter(id, stoppedAt, elsewhere)),
    `every task of ${node.nodeId} firing elsewhere`,
    60_000,
  );
  const last = firstFires(bench, moved, stoppedAt, elsewhere).at(-1)?.firedAt ?? Number.NaN;
  const late = lateness(bench, moved, stoppedAt, last);
  await sleep(2_000);
  return {
    'stop: exited after ms': exitedAt - stoppedAt,
    'stop: tasks moved (slots)': `${moved.length} (${slots})`,
    'stop: slots leased by the others after ms': leasedAt - stoppedAt,
    'stop: every moved task fired elsewhere after ms': last - stoppedAt,
    'stop: ticks caught up': late.catchUps,
    'stop: max lateness of moved tasks ms': late.max,
    'stop: ZooKeeper writes': await zkWrites(bench, zxid, steadyWrites),
  };
};

export type ClusterBenchOptions = { tasks: number; everyMs: number; sessionTimeoutMs: number; quick: boolean };

/**
 * The cluster at work (design §4, §9): a private 3-server ZooKeeper ensemble, three `kairos start`
 * processes on one shared SQLite log, `tasks` tasks firing every `everyMs`. Then, each once the cluster
 * is steady again: `kill -9` of a node that does not lead, a fourth node joining, a graceful stop
 * (SIGTERM) of another. Times come from the log (`firedAt`, the leader's `NodeLeft`) against the instant
 * the bench acted; ZooKeeper writes from the leader's zxid. Ends with every tick's count over the whole
 * run and `kairos verify` on the log.
 */
export const cluster = async ({ tasks, everyMs, sessionTimeoutMs, quick }: ClusterBenchOptions): Promise<Result> => {
  const ensemble = await startEnsemble();
  const nodes = createLocalCluster({
    zk: `${ensemble.connectionString}${CHROOT}`,
    sessionTimeout: `${sessionTimeoutMs}ms`,
  });
  let store: EventStore | undefined;
  try {
    const first = await Promise.all([nodes.add(), nodes.add(), nodes.add()]);
    store = await openEventStore(nodes.store);
    // Appended straight to the shared log, which every node follows; ticks spread evenly over the period.
    const start = Math.ceil(Date.now() / 1_000) * 1_000 + 3_000;
    const ids = await seedTasks(
      store,
      tasks,
      (i) => taskSpec(everyMs, start + Math.floor((i * everyMs) / tasks)),
      Date.now(),
    );
    const view = await clusterOf(first[0] as NodeHandle);
    const bench: Bench = {
      ensemble,
      cluster: nodes,
      log: new ClusterLog(store),
      ids,
      everyMs,
      sessionTimeoutMs,
      slotCount: view.slotCount ?? Number.NaN,
    };
    const result: Result = {
      scenario: `cluster: 3 nodes, ${tasks} tasks every ${everyMs / 1_000}s, ZooKeeper session timeout ${sessionTimeoutMs / 1_000}s`,
    };
    await waitSteady(bench, 'after creation');
    const { result: steady, writesPerSecond } = await steadyState(bench, quick ? 5_000 : 15_000);
    Object.assign(result, steady);

    const { leader } = await clusterOf(first[0] as NodeHandle);
    const [victim, stopped] = first.filter((n) => n.nodeId !== leader) as [NodeHandle, NodeHandle];
    Object.assign(result, await failover(bench, victim, writesPerSecond));
    await waitSteady(bench, 'after the failover');
    Object.assign(result, await join(bench, writesPerSecond));
    await waitSteady(bench, 'after the join');
    Object.assign(result, await gracefulStop(bench, stopped, writesPerSecond));
    await waitSteady(bench, 'after the stop');

    const { duplicates, missed } = bench.log.tickProblems(ids, everyMs, Date.now() - everyMs - 3_000);
    result['ticks fired twice / missed (whole run)'] = `${duplicates} / ${missed + bench.log.dropped}`;
    result['events in the log'] = [...bench.log.counts.values()].reduce((a, b) => a + b, 0);
    await Promise.all(nodes.nodes.map((n) => n.kill9()));
    const { report } = await nodes.verify();
    result['kairos verify'] = report.ok
      ? `clean (${report.fires} fires, ${report.inFlight} in flight)`
      : `${report.violations.length} violations: ${[...new Set(report.violations.map((v) => v.kind))].join(', ')}`;
    return result;
  } catch (err) {
    // A node that died or stalled explains most failures here: show what each one said.
    const outputs = nodes.nodes
      .map((n) => `--- ${n.nodeId} (${n.state} ${JSON.stringify(n.exit)})\n${n.output().slice(-3_000)}`)
      .join('\n');
    throw new Error(`${(err as Error).message}\n${outputs}`, { cause: err });
  } finally {
    await store?.close();
    await nodes.stop();
    await ensemble.stop();
  }
};
