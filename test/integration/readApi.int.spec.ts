import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKairos, type RunningKairos } from '../../src/app/startKairos.js';
import { compileConfig } from '../../src/config/config.js';

/**
 * The read side's HTTP routes on a real node (in-process, real sockets): every filter is validated,
 * a bad value answers 400 naming its parameter and never reaches the read side; the success paths
 * answer the documented shapes; `reason` lands in the audit; the OpenAPI document lists it all.
 */

let dir: string;
let kairos: RunningKairos;

type ErrorBody = { code: string; message: string; details?: { issues?: Array<{ path: string; message: string }> } };

const call = async <T = unknown>(method: string, path: string, body?: unknown) => {
  const res = await fetch(`${kairos.url}${path}`, {
    method,
    headers: { 'x-kairos-actor': 'alice', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-read-api-'));
  kairos = await startKairos(
    compileConfig({
      flags: { port: 0, host: '127.0.0.1', dataDir: dir, store: 'memory:', nodeId: 'api', logLevel: 'silent' },
    }),
  );
  // No consumer answers: with overlap allow every tick still fires.
  await call('POST', '/api/tasks', {
    id: 'report',
    schedule: { every: '100ms' },
    target: { topic: 'reports' },
    overlap: 'allow',
  });
});

afterAll(async () => {
  await kairos?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('read routes: every filter is validated', () => {
  const cases: Array<[string, string]> = [
    ['/api/fires?status=exploded', 'status'],
    ['/api/fires?status=', 'status'],
    ['/api/fires?trigger=whenever', 'trigger'],
    ['/api/fires?task=has%20space', 'task'],
    ['/api/fires?since=yesterday', 'since'],
    ['/api/fires?until=2026-13-01T00:00:00Z', 'until'],
    ['/api/fires?minLateness=slow', 'minLateness'],
    ['/api/fires?limit=0', 'limit'],
    ['/api/fires?limit=1001', 'limit'],
    ['/api/fires?limit=ten', 'limit'],
    ['/api/fires?cursor=not-ours', 'cursor'],
    ['/api/fires?node=', 'node'],
    ['/api/fires?colour=red', 'colour'],
    ['/api/audit?action=renamed', 'action'],
    ['/api/audit?since=soon', 'since'],
    ['/api/audit?task=../etc', 'task'],
    ['/api/audit?cursor=eyJ4IjoxfQ', 'cursor'],
    ['/api/tasks?status=sleeping', 'status'],
    ['/api/tasks?failing=maybe', 'failing'],
    ['/api/tasks?sort=colour', 'sort'],
    ['/api/tasks?order=up', 'order'],
    ['/api/tasks?labels=nolabel', 'labels'],
    ['/api/tasks?limit=-1', 'limit'],
    ['/api/tasks?at=tomorrowish', 'at'],
    ['/api/tasks/report?at=whenever', 'at'],
    ['/api/tasks/report/explain', 'at'],
    ['/api/tasks/report/explain?at=noon', 'at'],
    ['/api/tasks/report/changes?limit=100000', 'limit'],
    ['/api/tasks/report/history?limit=0', 'limit'],
    ['/api/stats?step=week', 'step'],
    ['/api/stats?from=1h&to=2h', 'from'],
    ['/api/stats?from=365d&step=minute', 'from'],
    ['/api/stats?task=a%2Fb', 'task'],
    ['/api/cluster/history?kind=node-exploded', 'kind'],
    ['/api/cluster/history?until=never', 'until'],
    // A bare number is not "milliseconds ago" (an epoch time would silently mean 1970).
    ['/api/fires?since=1700000000000', 'since'],
    ['/api/stats?from=5', 'from'],
    // The wrong way round would silently select nothing.
    ['/api/fires?since=1h&until=2h', 'since'],
    ['/api/audit?since=now&until=1d', 'since'],
    ['/api/cluster/history?since=1m&until=2m', 'since'],
  ];
  it.each(cases)('%s → 400 naming %s', async (path, field) => {
    const res = await call<ErrorBody>('GET', path);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.details?.issues?.map((i) => i.path.replace(/\[\d+\]$/, ''))).toContain(field);
  });

  it('a replay request with a bad body is refused before anything is rebuilt', async () => {
    for (const [body, field] of [
      [{ models: ['everything'] }, 'body.models'],
      [{ from: -1 }, 'body.from'],
      [{ check: true, from: 3 }, 'body.from'],
      [{ colour: 'red' }, 'body.colour'],
      [{ from: 1_000_000_000 }, 'body.from'],
    ] as const) {
      const res = await call<ErrorBody>('POST', '/api/read-models/replay', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.details?.issues?.map((i) => i.path.replace(/\[\d+\]$/, ''))).toContain(field);
    }
  });

  it('a reason is at most 500 characters, and not part of the task document', async () => {
    const long = await call<ErrorBody>('POST', '/api/tasks/report/pause', { reason: 'x'.repeat(501) });
    expect(long.status).toBe(400);
    expect(long.body.details?.issues?.[0]?.path).toBe('body.reason');
    const typed = await call<ErrorBody>('PUT', '/api/tasks/report', {
      schedule: { every: '100ms' },
      target: { topic: 'reports' },
      reason: 42,
    });
    expect(typed.status).toBe(400);
    expect(typed.body.details?.issues?.[0]?.path).toBe('reason');
  });
});

describe('read routes: success paths', () => {
  it('an operator action with a reason is in the audit with who, where and why', async () => {
    expect((await call('POST', '/api/tasks/report/pause', { reason: 'maintenance window' })).status).toBe(200);
    expect((await call('POST', '/api/tasks/report/resume', { reason: 'done' })).status).toBe(200);
    const audit = await call<{ entries: Array<Record<string, unknown>> }>('GET', '/api/audit?task=report');
    expect(audit.body.entries.slice(0, 2)).toMatchObject([
      { action: 'resumed', actor: 'user:alice', node: 'api', reason: 'done' },
      { action: 'paused', actor: 'user:alice', node: 'api', reason: 'maintenance window' },
    ]);
  });

  it('the board, fires, stats, changes and explain answer their documented shapes', async () => {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const board = await call<{ total: number; tasks: Array<{ id: string; paused: unknown }>; next: null }>(
      'GET',
      '/api/tasks?q=repo&sort=nextFireAt',
    );
    expect(board.body).toMatchObject({ total: 1, tasks: [{ id: 'report', paused: null }], next: null });
    const fires = await call<{ fires: Array<{ taskId: string; status: string }>; next: string | null }>(
      'GET',
      '/api/fires?task=report&limit=2',
    );
    expect(fires.body.fires).toHaveLength(2);
    expect(fires.body.next).toEqual(expect.any(String));
    const more = await call<{ fires: unknown[] }>('GET', `/api/fires?task=report&limit=2&cursor=${fires.body.next}`);
    expect(more.body.fires).toHaveLength(2);
    expect(more.body.fires).not.toContainEqual(fires.body.fires[0]);
    const stats = await call<{ points: Array<{ fires: number }>; total: { fires: number } }>(
      'GET',
      '/api/stats?from=5m',
    );
    expect(stats.body.total.fires).toBeGreaterThan(0);
    const changes = await call<{ changes: Array<{ action: string }> }>('GET', '/api/tasks/report/changes');
    expect(changes.body.changes.map((c) => c.action)).toEqual(['created', 'paused', 'resumed']);
    const explained = await call<{ verdict: string; evidence: unknown[] }>('GET', '/api/tasks/report/explain?at=200ms');
    expect(['fired', 'skipped', 'not-due'], JSON.stringify(explained.body)).toContain(explained.body.verdict);
    const unknown = await call<ErrorBody>('GET', '/api/tasks/nobody/changes');
    expect(unknown.status).toBe(404);
  });

  it('statistics count whole buckets: the range widens to the steps it touches, and says so', async () => {
    const stats = await call<{ from: string; to: string; step: string; total: { fires: number } }>(
      'GET',
      '/api/stats?task=report&from=30m',
    );
    expect(stats.status).toBe(200);
    expect(stats.body.step).toBe('hour');
    for (const bound of [stats.body.from, stats.body.to]) expect(Date.parse(bound) % 3_600_000).toBe(0);
    // Its fires (all in the last few seconds) are in the hour buckets the range touches: counted, not left
    // out because the current hour began before `from` (as when buckets had to start inside the range).
    expect(stats.body.total.fires).toBeGreaterThan(0);
  });

  it('the board finds labels whose values hold "=" and whose keys hold quotes', async () => {
    const created = await call('POST', '/api/tasks', {
      id: 'labelled',
      schedule: { every: '1h' },
      target: { topic: 'reports' },
      labels: { env: 'a=b', 'k"q': 'v' },
    });
    expect(created.status).toBe(201);
    for (const query of ['labels=env=a=b', 'labels=k%22q=v', 'labels=env=a=b,k%22q=v']) {
      const board = await call<{ tasks: Array<{ id: string }> }>('GET', `/api/tasks?${query}`);
      expect(
        board.body.tasks.map((t) => t.id),
        query,
      ).toEqual(['labelled']);
    }
    const none = await call<{ tasks: unknown[] }>('GET', '/api/tasks?labels=env=a');
    expect(none.body.tasks).toEqual([]);
  });

  it('lists every read route in /openapi.json with its parameters', async () => {
    const doc = await call<{ paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>> }>(
      'GET',
      '/openapi.json',
    );
    for (const path of [
      '/api/fires',
      '/api/audit',
      '/api/stats',
      '/api/cluster/history',
      '/api/stream',
      '/api/tasks/{id}/changes',
      '/api/tasks/{id}/explain',
      '/api/read-models',
      '/api/read-models/replay',
    ])
      expect(Object.keys(doc.body.paths), path).toContain(path);
    expect(doc.body.paths['/api/fires']?.get?.parameters?.map((p) => p.name)).toEqual(
      expect.arrayContaining(['task', 'status', 'node', 'trigger', 'since', 'until', 'minLateness', 'cursor', 'limit']),
    );
  });
});

describe('stopping a node with live-feed subscribers', () => {
  it('ends their streams with a reason instead of waiting for them', async () => {
    const node = await startKairos(
      compileConfig({
        flags: { port: 0, host: '127.0.0.1', dataDir: dir, store: 'memory:', nodeId: 'stopping', logLevel: 'silent' },
      }),
    );
    const response = await fetch(`${node.url}/api/stream`);
    const text = response.text();
    await node.close();
    expect((await text).trimEnd().split('\n\n').at(-1)).toMatch(/^event: end\ndata: .*"the node is stopping/);
  });
});
