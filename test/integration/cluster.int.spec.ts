import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TaskSpec } from '../../domain/task/spec.js';
import { startKairos, type RunningKairos } from '../../src/app/startKairos.js';
import { compileConfig } from '../../src/config/config.js';
import { verifyStore } from '../../src/verify/verifyStore.js';
import { waitUntil } from './support/waiting.js';
import { useZkEnsemble } from './support/zkEnsemble.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type ClusterJson = {
  mode: string;
  nodeId: string;
  connection: string;
  slotCount: number | null;
  members: Array<{ id: string }>;
  slotsPerNode: Record<string, number> | null;
  tasksPerNode: Record<string, number>;
  leader: string | null;
  unplaceable: string[];
};
const cluster = async (url: string): Promise<ClusterJson> =>
  (await (await fetch(`${url}/api/cluster`)).json()) as ClusterJson;
type Fired = { taskId: string; scheduledAt: string; node: string; epoch: number; trigger: string; attempt: number };

/**
 * Two nodes, one ZooKeeper ensemble, one shared log (cluster mode through `KAIROS_ZK`): the tasks are
 * divided between them, and when one leaves the other takes its tasks over — no tick fired twice,
 * none lost, and `verify` clean at the end.
 */
describe('a cluster of nodes on one shared log', () => {
  const zk = useZkEnsemble();
  const dir = mkdtempSync(join(tmpdir(), 'kairos-cluster-'));
  const nodes: RunningKairos[] = [];
  afterAll(async () => {
    for (const n of nodes) await n.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (nodeId: string, options: { chroot?: string; labels?: string } = {}): Promise<RunningKairos> => {
    const node = await startKairos(
      compileConfig({
        env: options.labels ? { KAIROS_NODE_LABELS: options.labels } : {},
        flags: {
          port: 0,
          host: '127.0.0.1',
          nodeId,
          dataDir: join(dir, nodeId),
          store: `sqlite:${join(dir, `${options.chroot?.replaceAll('/', '-') ?? 'shared'}.db`)}`,
          logLevel: 'silent',
          zk: `${zk.ensemble.connectionString}${options.chroot ?? '/kairos/test'}`,
          zkSessionTimeout: '2s',
        },
      }),
    );
    nodes.push(node);
    return node;
  };

  it('divides the tasks, hands them over when a node stops, and never fires a tick twice', async () => {
    const a = await start('node-a');
    const b = await start('node-b');
    for (let i = 0; i < 20; i++) {
      const spec = TaskSpec.parse({
        id: `task-${i}`,
        schedule: { every: '1s' },
        target: { topic: 'cluster' },
        overlap: 'allow',
        misfire: { policy: 'fire-all' },
      });
      await a.node.createTask(spec, { actor: 'user:test' });
    }
    await sleep(4_000);
    const firedBy = async () =>
      (await b.store.readAll({ maxCount: 100_000 })).filter((e) => e.type === 'TaskFired').map((e) => e.data as Fired);
    const before = await firedBy();
    expect(new Set(before.map((f) => f.node))).toEqual(new Set(['node-a', 'node-b']));
    const both = await cluster(b.url);
    expect(both).toMatchObject({ mode: 'zookeeper', nodeId: 'node-b', connection: 'connected', slotCount: 1024 });
    expect(both.members.map((m) => m.id).sort()).toEqual(['node-a', 'node-b']);
    expect(Object.values(both.slotsPerNode ?? {}).reduce((x, y) => x + y, 0)).toBe(1024);
    expect(Object.values(both.tasksPerNode).reduce((x, y) => x + y, 0)).toBe(20);

    const stoppedAt = Date.now();
    await a.close();
    await sleep(4_000);
    const after = await firedBy();
    const late = after.filter((f) => Date.parse(f.scheduledAt) > stoppedAt + 1_000);
    expect(late.length).toBeGreaterThan(20);
    expect(new Set(late.map((f) => f.node))).toEqual(new Set(['node-b']));

    const keys = after
      .filter((f) => f.attempt === 1 && f.trigger !== 'manual')
      .map((f) => `${f.taskId}@${f.scheduledAt}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect((await cluster(b.url)).tasksPerNode).toEqual({ 'node-b': 20 });
    // Its fires had no outcome (no consumer), so node-a kept them: node-b took them over from a node gone.
    const takeovers = (await b.store.readAll({ maxCount: 100_000 }))
      .filter((e) => e.type === 'TaskReassigned' && (e.data as { previousNode: string }).previousNode === 'node-a')
      .map((e) => (e.data as { reason: string }).reason);
    expect(takeovers.length).toBeGreaterThan(0);
    expect(new Set(takeovers)).toEqual(new Set(['node-lost']));
    const report = await verifyStore(b.store);
    expect(report.violations).toEqual([]);
    expect(report.tasks).toBe(20);
  });

  it('records the cluster in kairos-cluster, hands idle tasks off with TaskReleased on a graceful stop, and places pinned tasks by label', async () => {
    // A webhook that answers at once: fires complete, so a stopping node has nothing left in flight.
    const hook: Server = createServer((_req, res) => res.writeHead(200).end('ok'));
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const port = (hook.address() as { port: number }).port;
    try {
      const chroot = '/kairos/handoff';
      const a = await start('node-a', { chroot, labels: 'zone=a' });
      const b = await start('node-b', { chroot, labels: 'zone=b' });
      const c = await start('node-c', { chroot, labels: 'zone=c' });
      const task = (id: string, runOn?: object) =>
        TaskSpec.parse({
          id,
          schedule: { every: '1s' },
          target: { http: { url: `http://127.0.0.1:${port}/hook` } },
          misfire: { policy: 'fire-all' },
          ...(runOn ? { runOn } : {}),
        });
      for (let i = 0; i < 30; i++) await b.node.createTask(task(`job-${i}`), { actor: 'user:test' });
      await b.node.createTask(task('zone-c-only', { labels: { zone: 'c' } }), { actor: 'user:test' });
      await b.node.createTask(task('nowhere', { labels: { zone: 'mars' } }), { actor: 'user:test' });
      await sleep(3_000);

      const log = async () => b.store.readAll({ maxCount: 100_000 });
      const clusterEvents = async () =>
        (await b.store.readStream('kairos-cluster')).map((e) => ({
          type: e.type,
          data: e.data as Record<string, unknown>,
        }));
      const view = await cluster(c.url);
      expect(view.leader).toBe('node-a');
      expect(view.unplaceable).toEqual(['nowhere']);
      await waitUntil(
        async () => (await clusterEvents()).some((e) => e.type === 'TasksUnplaceable'),
        'the leader to record the unplaceable task',
      );
      let recorded = await clusterEvents();
      expect(recorded[0]).toMatchObject({ type: 'LeaderElected', data: { node: 'node-a', previous: null } });
      const joined = recorded.filter((e) => e.type === 'NodeJoined').map((e) => e.data.node);
      expect(joined.sort()).toEqual(['node-a', 'node-b', 'node-c']);
      expect(recorded.filter((e) => e.type === 'SlotsMoved').length).toBeGreaterThanOrEqual(1);
      expect(recorded.filter((e) => e.type === 'TasksUnplaceable').at(-1)).toMatchObject({
        type: 'TasksUnplaceable',
        data: { count: 1, taskIds: ['nowhere'] },
      });

      // The pinned task fires on its zone's node only; the unplaceable one nowhere.
      const fired = (await log()).filter((e) => e.type === 'TaskFired').map((e) => e.data as Fired);
      expect(new Set(fired.filter((f) => f.taskId === 'zone-c-only').map((f) => f.node))).toEqual(new Set(['node-c']));
      expect(fired.filter((f) => f.taskId === 'nowhere')).toEqual([]);

      // A definition change made through another node reaches the owner through the log.
      const changedAt = Date.now();
      await b.node.updateTask(
        TaskSpec.parse({ ...task('zone-c-only', { labels: { zone: 'c' } }), schedule: { every: '2s' } }),
        {
          actor: 'user:test',
        },
      );
      await waitUntil(
        () => (c.node.get('zone-c-only')?.state.spec?.schedule as { every?: number } | undefined)?.every === 2_000,
        'the owner to see the new schedule',
        5_000,
      );
      // Measured, not asserted (timing belongs to benchmarks): the issue asks for under a second.
      console.info(`definition change reached the owner in ${Date.now() - changedAt} ms`);

      // Graceful stop of the leader: the tasks it held with nothing in flight are released and taken over
      // as a hand-off; one caught with a fire in flight stays recorded as node-a's until another takes it.
      // Held by node-a when it stops: its latest claim (the leader's balancing may have moved some before).
      const beforeStop = await log();
      const claims = new Map<string, string>();
      for (const e of beforeStop)
        if (e.type === 'TaskAssigned' || e.type === 'TaskReassigned') {
          const d = e.data as { taskId: string; node: string };
          claims.set(d.taskId, d.node);
        }
      const heldByA = new Set([...claims].filter(([, node]) => node === 'node-a').map(([taskId]) => taskId));
      expect(heldByA.size).toBeGreaterThan(0);
      const stoppedAt = beforeStop.at(-1)!.position;
      await a.close();
      await sleep(3_000);
      const events = (await log()).filter((e) => e.position > stoppedAt);
      const released = events
        .filter((e) => e.type === 'TaskReleased')
        .map((e) => e.data as { taskId: string; node: string });
      expect(released.length).toBeGreaterThan(heldByA.size / 2);
      for (const r of released) expect(heldByA.has(r.taskId) && r.node === 'node-a').toBe(true);
      const takeovers = events
        .filter((e) => e.type === 'TaskReassigned')
        .map((e) => e.data as { taskId: string; previousNode: string; reason: string })
        .filter((t) => t.previousNode === 'node-a');
      for (const taskId of heldByA) {
        // Not released (a fire in flight): node-lost, or rebalance when the claimer had not yet seen the
        // member leave (its membership and lease watches race): the reason is informational.
        const reasons = released.some((r) => r.taskId === taskId) ? ['drain'] : ['node-lost', 'rebalance'];
        const takeover = takeovers.find((t) => t.taskId === taskId);
        expect(reasons, taskId).toContain(takeover?.reason);
      }
      const afterStop = await cluster(b.url);
      expect(afterStop.leader).toMatch(/^node-[bc]$/);
      recorded = await clusterEvents();
      expect(recorded.map((e) => e.type)).toEqual(expect.arrayContaining(['NodeLeft']));
      expect(recorded.find((e) => e.type === 'NodeLeft')?.data.node).toBe('node-a');
      expect(recorded.filter((e) => e.type === 'LeaderElected').at(-1)?.data).toMatchObject({
        node: afterStop.leader,
        previous: 'node-a',
      });

      // No tick fired twice, none lost, and the survivors fire every task (except the unplaceable one).
      const all = (await log()).filter((e) => e.type === 'TaskFired').map((e) => e.data as Fired);
      const keys = all.filter((f) => f.trigger !== 'manual').map((f) => `${f.taskId}@${f.scheduledAt}#${f.attempt}`);
      expect(new Set(keys).size).toBe(keys.length);
      const report = await verifyStore(b.store);
      expect(report.violations).toEqual([]);
    } finally {
      await new Promise((resolve) => hook.close(resolve));
    }
  });
});
