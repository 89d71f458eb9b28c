import { describe, expect, it } from 'vitest';
import {
  createTasks,
  expectVerifyClean,
  lateFires,
  maxLateness,
  outputs,
  tickProblems,
  useChaosCluster,
  waitFor,
  waitForAllFiring,
} from './support/chaosCluster.js';

/**
 * A rolling restart under load: each node in turn is stopped gracefully (SIGTERM) and started again,
 * and is firing again before the next one goes. Every task moves twice per step (to the survivors, and
 * back to the restarted node), and still every tick is fired exactly once and none is missed — not
 * even late past the misfire threshold, which the policy counts as missed (a `catch-up` fire here;
 * dropped or coalesced under `skip` or `fire-once`).
 */
describe('a rolling restart of every node under load', () => {
  const world = useChaosCluster('rolling');

  it('misses no tick and fires none twice', async () => {
    const { cluster, log } = world;
    const nodes = await Promise.all([cluster.add(), cluster.add(), cluster.add()]);
    const tasks = await createTasks(nodes[0]!, 45);
    await waitForAllFiring(log, tasks, 3);

    const steps: string[] = [];
    const rollingFrom = Date.now();
    for (const node of nodes) {
      const stoppingAt = Date.now();
      const exit = await node.stop();
      expect(exit, node.output()).toEqual({ code: 0, signal: null });
      const stoppedAt = Date.now();
      await node.restart();
      const readyAt = Date.now();
      await waitFor(
        log,
        (l) => l.scheduled().some((f) => f.node === node.nodeId && f.firedAt > readyAt),
        `${node.nodeId} firing again after its restart`,
      );
      const firing = Math.min(
        ...log
          .scheduled()
          .filter((f) => f.node === node.nodeId && f.firedAt > readyAt)
          .map((f) => f.firedAt),
      );
      steps.push(
        `${node.nodeId} stopped in ${stoppedAt - stoppingAt} ms, ready in ${readyAt - stoppedAt} ms, firing ${firing - readyAt} ms later`,
      );
    }
    const settled = Date.now() + 3_000;
    await waitFor(
      log,
      (l) => tasks.every((t) => l.scheduled().some((f) => f.taskId === t && f.scheduledAt >= settled)),
      'every task firing after the rolling restart',
    );
    const context = `\n${outputs(cluster)}`;

    const fires = log.scheduled();
    console.info(
      `rolling restart: ${steps.join('; ')}; ${fires.length} fires, ${lateFires(fires, rollingFrom).length} past the misfire threshold, ` +
        `max lateness ${maxLateness(fires, rollingFrom)} ms, ${log.types.get('TaskReassigned') ?? 0} TaskReassigned, ` +
        `${log.types.get('TaskReleased') ?? 0} TaskReleased`,
    );
    expect(tickProblems(log, tasks, settled), context).toEqual([]);
    // A graceful stop hands its tasks over, and a start takes its share: no tick is late enough for the
    // misfire policy to count it as missed.
    expect(lateFires(fires, rollingFrom), context).toEqual([]);
    expect(log.types.get('TaskMisfired') ?? 0).toBe(0);

    await expectVerifyClean(cluster, tasks.length);
  });
});
