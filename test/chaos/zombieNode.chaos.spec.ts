import { describe, expect, it } from 'vitest';
import {
  SESSION_TIMEOUT_MS,
  createTasks,
  expectVerifyClean,
  iso,
  outputs,
  tickProblems,
  until,
  useChaosCluster,
  waitFor,
  waitForAllFiring,
} from './support/chaosCluster.js';

/**
 * A node frozen (SIGSTOP) for twice the session timeout loses its session while it cannot notice; the
 * survivors take its tasks. When it wakes (SIGCONT) its timers are all overdue and it still believes it
 * holds its leases: it must not fire one tick with its old epoch (design §3: the lease is checked, and
 * the fencing epoch recorded in the stream refuses a stale append), then it rejoins with new leases.
 */
describe('a zombie node (SIGSTOP past its session, then SIGCONT)', () => {
  const world = useChaosCluster('zombie');

  it('fires nothing with its expired session, fires no tick twice, and rejoins', async () => {
    const { cluster, log } = world;
    const nodes = await Promise.all([cluster.add(), cluster.add(), cluster.add()]);
    const tasks = await createTasks(nodes[0]!, 30);
    await waitForAllFiring(log, tasks, 3);

    const zombie = nodes[2]!;
    const pausedAt = Date.now();
    zombie.pause();
    // Everything the zombie appended is in the log now: a frozen process commits nothing.
    const pausedPosition = (await log.sync()).position;
    const moved = tasks.filter((t) => log.ownerAt(t, pausedAt) === zombie.nodeId);
    expect(moved.length).toBeGreaterThan(0);
    const takeoverOf = (taskId: string) =>
      log.ownerships.find(
        (o) =>
          o.taskId === taskId && o.type === 'TaskReassigned' && o.node !== zombie.nodeId && o.position > pausedPosition,
      );
    await waitFor(log, () => moved.every((t) => takeoverOf(t) !== undefined), 'the survivors taking the tasks over');
    await until(pausedAt + 2 * SESSION_TIMEOUT_MS);
    const resumedAt = Date.now();
    zombie.resume();

    const oldEpochs = new Set(
      log
        .scheduled()
        .filter((f) => f.node === zombie.nodeId && f.firedAt < pausedAt)
        .map((f) => f.epoch),
    );
    const settled = resumedAt + 5_000;
    await waitFor(
      log,
      (l) =>
        l.scheduled().some((f) => f.node === zombie.nodeId && f.firedAt > resumedAt && !oldEpochs.has(f.epoch)) &&
        tasks.every((t) => l.scheduled().some((f) => f.taskId === t && f.scheduledAt >= settled)),
      'the zombie firing again with new leases, and every task firing after that',
      30_000,
    );
    const context = `\n${outputs(cluster)}`;

    expect(tickProblems(log, tasks, settled), context).toEqual([]);
    // No fire with the expired session's epochs once a survivor had recorded its takeover, nor once the
    // session had expired (whatever the task).
    const stale = log.fires.filter(
      (f) =>
        f.node === zombie.nodeId &&
        oldEpochs.has(f.epoch) &&
        (f.firedAt > pausedAt + SESSION_TIMEOUT_MS || f.position > (takeoverOf(f.taskId)?.position ?? Infinity)),
    );
    expect(
      stale.map((f) => `${f.taskId} ${iso(f.scheduledAt)} epoch ${f.epoch} fired ${iso(f.firedAt)} pos ${f.position}`),
      context,
    ).toEqual([]);
    // The takeover really fenced the zombie: a newer epoch in each moved stream.
    for (const t of moved) expect(takeoverOf(t)!.epoch, t).toBeGreaterThan(Math.max(...oldEpochs));

    const rejoined = log.scheduled().filter((f) => f.node === zombie.nodeId && f.firedAt > resumedAt);
    console.info(
      `zombie: paused ${resumedAt - pausedAt} ms, ${moved.length}/${tasks.length} tasks taken over; ` +
        `${rejoined.length} fires by it after SIGCONT, first ${Math.min(...rejoined.map((f) => f.firedAt)) - resumedAt} ms after, all with new epochs`,
    );

    await expectVerifyClean(cluster, tasks.length);
  });
});
