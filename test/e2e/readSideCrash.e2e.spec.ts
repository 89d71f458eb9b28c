import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, freePort, sleep, startNodeProcess, tempDir, type NodeProcess } from './support/nodeProcess.js';

type Comparison = { ok: boolean; position: number; tables: Array<{ model: string; table: string; rows: number }> };

/**
 * Acceptance (issue 9): `kill -9` while the read models are being written — of the read-side process
 * alone (the node starts it again), and of the node with it — and after the restart every read model
 * equals a full rebuild of the log: no row twice, none missing.
 */
describe('read models through kill -9', () => {
  const dir = tempDir('kairos-e2e-read-crash-');
  const processes: NodeProcess[] = [];
  let hooks: Server;
  let hookUrl: string;
  let answered = 0;

  beforeAll(async () => {
    // Every third fire fails: the models see successes, failures and retries.
    hooks = createServer((_req, res) => res.writeHead(answered++ % 3 === 0 ? 500 : 200).end());
    await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(hooks.address() as { port: number }).port}/hook`;
  });

  afterAll(async () => {
    for (const p of processes) await p.kill('SIGKILL');
    await new Promise((resolve) => hooks.close(resolve));
    dir.remove();
  });

  /** The read-side process the node forked. */
  const readSidePid = (node: NodeProcess): number => {
    const pids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(node.pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((pid) => pid > 0);
    expect(pids, 'the node runs one read-side process').toHaveLength(1);
    return pids[0] as number;
  };

  /** The nice value of each thread of a process (`/proc/<pid>/task/<tid>/stat`, field 19). */
  const nicenessOf = (pid: number): Set<number> =>
    new Set(
      readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
          // Fields after the name (2nd, in parentheses) start at the 3rd.
          return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3])];
        } catch {
          return []; // the thread ended meanwhile
        }
      }),
    );
  const LOWEST = 19;

  const status = (node: NodeProcess) => api<{ position: number; head: number }>(node.url, 'GET', '/api/read-models');

  const replayCheck = async (node: NodeProcess): Promise<Comparison> => {
    const res = await fetch(`${node.url}/api/read-models/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ check: true }),
    });
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const last = lines.at(-1) as { result?: { comparison: Comparison }; error?: unknown };
    if (!last.result) throw new Error(`replay --check failed: ${JSON.stringify(last.error)}`);
    return last.result.comparison;
  };

  it('every read model equals a full rebuild after the read side, then the node, is killed mid-projection', async () => {
    const port = await freePort();
    const node = await startNodeProcess({ dataDir: dir.path, port });
    processes.push(node);
    // Every thread of the read side (V8's and libuv's too) runs below the node's.
    await expect.poll(() => nicenessOf(readSidePid(node))).toEqual(new Set([LOWEST]));
    for (let i = 0; i < 40; i++) {
      await api(node.url, 'POST', '/api/tasks', {
        id: `job-${String(i).padStart(2, '0')}`,
        schedule: { every: '200ms' },
        target: { http: { url: hookUrl, timeout: '2s' } },
        overlap: 'allow',
        retry: { maxAttempts: 2, backoff: { initial: '100ms' } },
      });
    }
    // Three kills of the read-side process under ~400 events/s: each lands in or between its commits.
    for (let kill = 0; kill < 3; kill++) {
      await sleep(1_500);
      const before = readSidePid(node);
      process.kill(before, 'SIGKILL');
      await expect.poll(() => readSidePid(node), { timeout: 15_000 }).not.toBe(before);
    }
    // A restarted one too (polled: the node lowers it just after the fork, which `ps` may see first).
    await expect.poll(() => nicenessOf(readSidePid(node))).toEqual(new Set([LOWEST]));
    await sleep(1_500);
    expect((await status(node)).position).toBeGreaterThan(2_000);
    const first = await replayCheck(node);
    expect(first.ok, JSON.stringify(first.tables)).toBe(true);

    // Now the node and its read side together, mid-projection.
    const child = readSidePid(node);
    process.kill(child, 'SIGKILL');
    await node.kill('SIGKILL');
    const again = await startNodeProcess({ dataDir: dir.path, port });
    processes.push(again);
    await sleep(2_000);
    const second = await replayCheck(again);
    expect(second.ok, JSON.stringify(second.tables)).toBe(true);
    expect(second.tables.find((t) => t.table === 'attempts')?.rows).toBeGreaterThan(1_000);

    // Stopped: every attempt in the log has exactly one row, and no row lacks its TaskFired.
    await again.kill('SIGTERM');
    const log = new Database(join(dir.path, 'kairos.db'), { readonly: true });
    const read = new Database(join(dir.path, 'read.db'), { readonly: true });
    try {
      const fired = log.prepare("SELECT count(*) FROM events WHERE type = 'TaskFired'").pluck().get();
      const generation = read.prepare("SELECT generation FROM read_models WHERE name = 'fires'").pluck().get();
      const rows = read
        .prepare(`SELECT count(*) FROM "fires__attempts__g${String(generation)}"`)
        .pluck()
        .get();
      expect(rows).toBe(fired);
    } finally {
      log.close();
      read.close();
    }
  });
});
