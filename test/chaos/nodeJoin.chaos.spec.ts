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
 * A node joining a loaded cluster takes its share of the tasks (the assignment is balanced and sticky:
 * only the joiner gains tasks, the others keep theirs); every tick is still fired exactly once, and
 * none late past the misfire threshold (which the policy counts as missed).
 */
describe('a node joining under load', () => {
  const world = useChaosCluster('join');

  it('takes tasks from the others, missing no tick and firing none twice', async () => {
    const { cluster, log } = world;
    const nodes = await Promise.all([cluster.add(), cluster.add()]);
    const tasks = await createTasks(nodes[0]!, 45);
    await waitForAllFiring(log, tasks, 2);

    const joiningAt = Date.now();
    const joiner = await cluster.add();
    const readyAt = Date.now();
    const settled = readyAt + 5_000;
    await waitFor(
      log,
      (l) => tasks.every((t) => l.scheduled().some((f) => f.taskId === t && f.scheduledAt >= settled)),
      'every task firing after the join',
    );
    const context = `\n${outputs(cluster)}`;

    const before = new Map(tasks.map((t) => [t, log.ownerAt(t, joiningAt)]));
    const after = new Map(tasks.map((t) => [t, log.ownerAt(t, Date.now())]));
    const taken = tasks.filter((t) => after.get(t) === joiner.nodeId);
    const fires = log.scheduled();
    const firstByJoiner = Math.min(...fires.filter((f) => f.node === joiner.nodeId).map((f) => f.firedAt));
    console.info(
      `join: ready ${readyAt - joiningAt} ms after start, first fire ${firstByJoiner - readyAt} ms after ready; ` +
        `took ${taken.length}/${tasks.length} tasks; ${lateFires(fires, joiningAt).length} fires past the misfire threshold, ` +
        `max lateness ${maxLateness(fires, joiningAt)} ms`,
    );

    expect(tickProblems(log, tasks, settled), context).toEqual([]);
    expect(lateFires(fires, joiningAt), context).toEqual([]);
    expect(log.types.get('TaskMisfired') ?? 0).toBe(0);
    expect(taken.length, context).toBeGreaterThan(0);
    // The joiner takes about its share (a third, as the third node); the leader's balancing may move a
    // few more (tasks in slots the joiner won by rendezvous beyond its share go to whoever is short),
    // never a reshuffle. (A bound of a quarter plus four once failed here with 17 of 45 moved.)
    const movedElsewhere = tasks.filter((t) => after.get(t) !== joiner.nodeId && after.get(t) !== before.get(t));
    expect(taken.length + movedElsewhere.length, context).toBeLessThanOrEqual(Math.ceil(tasks.length / 3) + 4);
    expect(movedElsewhere.length, context).toBeLessThanOrEqual(4);

    await expectVerifyClean(cluster, tasks.length);
  });
});
