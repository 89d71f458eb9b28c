import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CLI,
  api,
  freePort,
  readLog,
  sleep,
  startNodeProcess,
  tempDir,
  type LogEvent,
  type NodeProcess,
} from './support/nodeProcess.js';

type Fired = {
  taskId: string;
  fireId: string;
  scheduledAt: string;
  firedAt: string;
  node: string;
  epoch: number;
  trigger: string;
  attempt: number;
};

/**
 * Acceptance (issue 2): the real node as an OS process, 20 tasks `every: 1s` with overlap `allow` and
 * misfire `fire-all`, `kill -9` mid-run, 5 s down, restart: no tick fired twice, every tick from the
 * first to the last present, the ticks missed while down fired as `catch-up`.
 */
describe('kill -9 and restart of a single node', () => {
  const dir = tempDir('kairos-e2e-kill-');
  const processes: NodeProcess[] = [];
  afterAll(async () => {
    for (const p of processes) await p.kill('SIGKILL');
    dir.remove();
  });

  it('loses no tick and fires none twice', async () => {
    const port = await freePort();
    const first = await startNodeProcess({ dataDir: dir.path, port });
    processes.push(first);
    for (let i = 0; i < 20; i++) {
      await api(first.url, 'POST', '/api/tasks', {
        id: `task-${String(i).padStart(2, '0')}`,
        schedule: { every: '1s' },
        target: { topic: 'e2e.ticks' },
        overlap: 'allow',
        misfire: { policy: 'fire-all', maxCatchUp: 1000 },
      });
    }
    await sleep(4_500);
    const killedAt = Date.now();
    await first.kill('SIGKILL');
    await sleep(5_000);
    const second = await startNodeProcess({ dataDir: dir.path, port });
    processes.push(second);
    const restartedAt = Date.now();
    await sleep(4_000);
    const log = await readLog(second.url);
    // The node's own check of the log's invariants agrees.
    const verified = await api<{ ok: boolean; violations: unknown[]; fires: number }>(second.url, 'GET', '/api/verify');
    expect(verified.violations).toEqual([]);
    expect(verified.ok).toBe(true);
    await second.kill('SIGTERM');
    // And so does `kairos verify` reading the store itself, with the node down.
    const cli = spawnSync(process.execPath, [CLI, 'verify'], {
      env: { ...process.env, KAIROS_DATA_DIR: dir.path, KAIROS_PORT: String(port) },
      encoding: 'utf8',
    });
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/^ok: 20 tasks/);

    const fired = log.filter((e: LogEvent) => e.type === 'TaskFired').map((e) => e.data as unknown as Fired);
    const context = `\nnode output:\n${first.output()}\n${second.output()}`;
    expect(fired.length, context).toBeGreaterThan(20 * 10);

    // At most one TaskFired per (task, tick), across both lives of the node.
    const keys = fired.map((f) => `${f.taskId}@${f.scheduledAt}`);
    expect(new Set(keys).size, context).toBe(keys.length);

    const byTask = new Map<string, Fired[]>();
    for (const f of fired) byTask.set(f.taskId, [...(byTask.get(f.taskId) ?? []), f]);
    expect(byTask.size).toBe(20);
    for (const [taskId, fires] of byTask) {
      const ticks = fires.map((f) => Date.parse(f.scheduledAt)).sort((a, b) => a - b);
      // Every tick from the first to the last, one second apart: nothing lost while the node was down.
      for (let i = 1; i < ticks.length; i++)
        expect(ticks[i]! - ticks[i - 1]!, `${taskId} gap after ${new Date(ticks[i - 1]!).toISOString()}`).toBe(1_000);
      expect(ticks.at(-1)!, taskId).toBeGreaterThan(restartedAt + 1_000);
      // Ticks due while the node was down were fired after the restart, marked as catch-up.
      const missed = fires.filter(
        (f) => Date.parse(f.scheduledAt) > killedAt + 50 && Date.parse(f.scheduledAt) < restartedAt - 1_500,
      );
      expect(missed.length, taskId).toBeGreaterThanOrEqual(4);
      for (const f of missed) {
        expect(f.trigger, `${taskId} ${f.scheduledAt}`).toBe('catch-up');
        expect(Date.parse(f.firedAt)).toBeGreaterThanOrEqual(restartedAt - 3_000);
      }
      // The restarted node recorded its newer epoch before firing.
      expect(new Set(fires.map((f) => f.epoch)).size, taskId).toBe(2);
    }
    const reassigned = log.filter((e) => e.type === 'TaskReassigned');
    expect(reassigned).toHaveLength(20);
  });
});
