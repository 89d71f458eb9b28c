import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKairos, type RunningKairos } from '../../src/app/startKairos.js';
import { compileConfig } from '../../src/config/config.js';
import { startEsdbStandIn } from '../support/esdbStandIn/index.js';

/**
 * The read side on the EventStoreDB log: a node whose log is the protocol stand-in (real gRPC through
 * the real client), its read-side process following `$all` with its own connection — the same queries,
 * the same rebuild, the same equality with a rebuild as on SQLite.
 */

let dir: string;
let kairos: RunningKairos;
let hooks: Server;
let stopStandIn: () => Promise<void>;

const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
  const res = await fetch(`${kairos.url}${path}`, {
    method,
    headers: { 'x-kairos-actor': 'ops', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
  return (text.startsWith('{"progress"') ? JSON.parse(text.trim().split('\n').at(-1)!) : JSON.parse(text)) as T;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-read-esdb-'));
  const standIn = await startEsdbStandIn();
  stopStandIn = () => standIn.stop();
  let n = 0;
  hooks = createServer((_req, res) => res.writeHead(n++ % 2 === 0 ? 200 : 500).end());
  await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(hooks.address() as { port: number }).port}/hook`;
  kairos = await startKairos(
    compileConfig({
      flags: { port: 0, host: '127.0.0.1', dataDir: dir, store: standIn.url, nodeId: 'esdb-node', logLevel: 'silent' },
    }),
  );
  for (const id of ['alpha', 'beta']) {
    await api('POST', '/api/tasks', {
      id,
      schedule: { every: '200ms' },
      target: { http: { url: hookUrl } },
      overlap: 'allow',
    });
  }
  await api('POST', '/api/tasks/beta/pause', { reason: 'checking the esdb read side' });
});

afterAll(async () => {
  await kairos?.close();
  await new Promise((resolve) => hooks.close(resolve));
  await stopStandIn?.();
  rmSync(dir, { recursive: true, force: true });
});

describe('read side on the EventStoreDB log (stand-in)', () => {
  it('answers fires, audit and the board from its own subscription to $all', async () => {
    await expect
      .poll(async () => (await api<{ fires: unknown[] }>('GET', '/api/fires?task=alpha&status=failed')).fires.length, {
        timeout: 15_000,
      })
      .toBeGreaterThan(2);
    const audit = await api<{ entries: Array<{ action: string; reason: string | null }> }>(
      'GET',
      '/api/audit?task=beta',
    );
    expect(audit.entries[0]).toMatchObject({ action: 'paused', reason: 'checking the esdb read side' });
    const board = await api<{ tasks: Array<{ id: string }> }>('GET', '/api/tasks?status=paused');
    expect(board.tasks.map((t) => t.id)).toEqual(['beta']);
  });

  it('a rebuild switches over, and equals a rebuild held at the same position', async () => {
    const rebuilt = await api<{ result: { progress: { phase: string; events: number } } }>(
      'POST',
      '/api/read-models/replay',
      {},
    );
    expect(rebuilt.result.progress).toMatchObject({ phase: 'done' });
    expect(rebuilt.result.progress.events).toBeGreaterThan(10);
    const checked = await api<{ result: { comparison: { ok: boolean; tables: unknown[] } } }>(
      'POST',
      '/api/read-models/replay',
      { check: true },
    );
    expect(checked.result.comparison.ok, JSON.stringify(checked.result.comparison.tables)).toBe(true);
  });
});
