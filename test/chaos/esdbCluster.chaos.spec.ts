import { describe, expect, it } from 'vitest';
import { startEsdbStandIn } from '../support/esdbStandIn/index.js';
import {
  SESSION_TIMEOUT_MS,
  createTasks,
  expectVerifyClean,
  outputs,
  tickProblems,
  useChaosCluster,
  waitFor,
} from './support/chaosCluster.js';

/**
 * Issue 4's acceptance: three node processes on a real ZooKeeper ensemble with the log on EventStoreDB —
 * here the gRPC protocol stand-in, reached through the EventStoreDB adapter — survive a `kill -9` with
 * no tick fired twice or lost, and `kairos verify` (reading the log through the adapter) is clean.
 */
describe('a cluster with its log on EventStoreDB (the gRPC stand-in)', () => {
  const world = useChaosCluster('esdb', { start: () => startEsdbStandIn() });

  it('hands a killed node’s tasks to the survivors, no tick twice, none lost, verify clean', async () => {
    const { cluster, log } = world;
    expect(cluster.store).toMatch(/^esdb:\/\//);
    const nodes = await Promise.all([cluster.add(), cluster.add(), cluster.add()]);
    const tasks = await createTasks(nodes[0]!, 30);
    await waitFor(
      log,
      (l) =>
        new Set(
          l
            .scheduled()
            .filter((f) => f.firedAt > Date.now() - 2_000)
            .map((f) => f.node),
        ).size === 3,
      'all three nodes firing',
    );
    const victim = nodes[1]!;
    const killedAt = Date.now();
    await victim.kill9();
    const settled = killedAt + SESSION_TIMEOUT_MS + 4_000;
    await waitFor(
      log,
      (l) => tasks.every((t) => l.scheduled().some((f) => f.taskId === t && f.scheduledAt >= settled)),
      'every task firing after the fail-over',
    );
    expect(tickProblems(log, tasks, settled), `\n${outputs(cluster)}`).toEqual([]);
    expect(log.scheduled().filter((f) => f.node === victim.nodeId && f.firedAt > killedAt)).toEqual([]);
    await expectVerifyClean(cluster, tasks.length);
  });
});
