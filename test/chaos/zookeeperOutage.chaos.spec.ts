import { describe, expect, it } from 'vitest';
import { serverMode } from '../../scripts/zk/fourLetterWord.js';
import {
  CI_TOLERANCE_MS,
  SESSION_TIMEOUT_MS,
  createTasks,
  expectVerifyClean,
  lateFires,
  outputs,
  tickProblems,
  until,
  useChaosCluster,
  waitFor,
  waitForAllFiring,
} from './support/chaosCluster.js';

/**
 * ZooKeeper itself failing under a running cluster. One server of three down: the ensemble keeps its
 * quorum, nodes connected to that server move to another within their session, and no tick is missed
 * (none even late past the misfire threshold). Two down: no quorum, every node must stop firing
 * within the session timeout (design §3.4: stop on suspension), and once the quorum is back the
 * ticks of the outage are caught up by the policy (fire-all), each exactly once.
 */
describe('ZooKeeper servers down under a running cluster', () => {
  const world = useChaosCluster('zk-outage');

  it('misses nothing with one server down; stops firing without a quorum and catches up once it is back', async () => {
    const { cluster, ensemble, log } = world;
    const nodes = await Promise.all([cluster.add(), cluster.add(), cluster.add()]);
    const tasks = await createTasks(nodes[0]!, 30);
    await waitForAllFiring(log, tasks, 3);
    const modes = await Promise.all(ensemble.servers.map((s) => serverMode(s.client)));
    const followers = modes.flatMap((m, i) => (m === 'follower' ? [i] : []));
    expect(modes.filter((m) => m === 'leader')).toHaveLength(1);
    expect(followers).toHaveLength(2);
    const [first, second] = followers as [number, number];

    // One follower down: its clients reconnect elsewhere; the leader keeps its quorum.
    const oneDownAt = Date.now();
    await ensemble.stopServer(first);
    const oneDownUntil = oneDownAt + 2 * SESSION_TIMEOUT_MS + 2_000;
    await waitFor(
      log,
      (l) => tasks.every((t) => l.scheduled().some((f) => f.taskId === t && f.scheduledAt >= oneDownUntil)),
      'every task firing with one server down',
    );
    const context = () => `\n${outputs(cluster)}`;
    expect(tickProblems(log, tasks, oneDownUntil), context()).toEqual([]);
    expect(lateFires(log.scheduled(), oneDownAt), context()).toEqual([]);
    expect(log.types.get('TaskMisfired') ?? 0).toBe(0);

    // A second server down: no quorum. The nodes must stop firing within the session timeout.
    const quorumLostAt = Date.now();
    await ensemble.stopServer(second);
    await until(quorumLostAt + 2 * SESSION_TIMEOUT_MS + 1_000);
    await log.sync();
    const lastFireWithoutQuorum = Math.max(...log.fires.map((f) => f.firedAt));
    const stoppedAfter = lastFireWithoutQuorum - quorumLostAt;

    const restoredAt = Date.now();
    await ensemble.startServer(first);
    const servingAt = Date.now();
    await ensemble.startServer(second);
    const settled = Date.now() + 5_000;
    await waitFor(
      log,
      (l) => tasks.every((t) => l.scheduled().some((f) => f.taskId === t && f.scheduledAt >= settled)),
      'every task firing after the quorum is back',
      30_000,
    );

    expect(tickProblems(log, tasks, settled), context()).toEqual([]);
    expect(stoppedAfter, context()).toBeLessThanOrEqual(SESSION_TIMEOUT_MS + CI_TOLERANCE_MS);
    expect(
      log.fires.filter(
        (f) => f.firedAt > quorumLostAt + SESSION_TIMEOUT_MS + CI_TOLERANCE_MS && f.firedAt < restoredAt,
      ),
    ).toEqual([]);
    // The outage's ticks were fired after the quorum came back, as catch-up.
    const outage = log
      .scheduled()
      .filter((f) => f.scheduledAt > lastFireWithoutQuorum && f.scheduledAt < servingAt - 1_000);
    expect(outage.length).toBeGreaterThanOrEqual(tasks.length * 3);
    expect(outage.filter((f) => f.trigger !== 'catch-up' || f.firedAt < restoredAt)).toEqual([]);
    const resumed = Math.min(...log.fires.filter((f) => f.firedAt > restoredAt).map((f) => f.firedAt));
    console.info(
      `zookeeper: one follower down, ${tasks.length} tasks on time; quorum lost → last fire ${stoppedAfter} ms after ` +
        `(bound ${SESSION_TIMEOUT_MS} + ${CI_TOLERANCE_MS} ms); quorum back ${servingAt - restoredAt} ms after restart, ` +
        `first fire ${resumed - servingAt} ms later; ${outage.length} outage ticks caught up`,
    );

    await expectVerifyClean(cluster, tasks.length);
  });
});
