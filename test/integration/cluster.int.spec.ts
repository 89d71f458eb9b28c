import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TaskSpec } from '../../domain/task/spec.js';
import { startKairos, type RunningKairos } from '../../src/app/startKairos.js';
import { compileConfig } from '../../src/config/config.js';
import { verifyStore } from '../../src/verify/verifyStore.js';
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
};
const cluster = async (url: string): Promise<ClusterJson> =>
  (await (await fetch(`${url}/api/cluster`)).json()) as ClusterJson;
type Fired = { taskId: string; scheduledAt: string; node: string; epoch: number; trigger: string; attempt: number };

/**
 * Two nodes, one ZooKeeper ensemble, one shared log (cluster mode through `KAIROS_ZK`): the tasks are
 * divided between them, and when one leaves the other takes its tasks over — no tick fired twice,
 * none lost, and `verify` clean at the end.
 */
describe('a cluster of two nodes on one log', () => {
  const zk = useZkEnsemble();
  const dir = mkdtempSync(join(tmpdir(), 'kairos-cluster-'));
  const nodes: RunningKairos[] = [];
  afterAll(async () => {
    for (const n of nodes) await n.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (nodeId: string): Promise<RunningKairos> => {
    const node = await startKairos(
      compileConfig({
        flags: {
          port: 0,
          host: '127.0.0.1',
          nodeId,
          dataDir: join(dir, nodeId),
          store: `sqlite:${join(dir, 'shared.db')}`,
          logLevel: 'silent',
          zk: `${zk.ensemble.connectionString}/kairos/test`,
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
    const report = await verifyStore(b.store);
    expect(report.violations).toEqual([]);
    expect(report.tasks).toBe(20);
  });
});
