import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskView } from '../../domain/task/view.js';
import { startKairos, type RunningKairos } from '../../src/app/startKairos.js';
import { compileConfig } from '../../src/config/config.js';

/**
 * The HTTP API of a real node (in-process, real sockets, the in-memory store): every route's success path,
 * then a matrix of bad input that must answer 4xx naming the field and leave the log untouched.
 */

type LogEvent = {
  position: number;
  id: string;
  stream: string;
  revision: number;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  time: string;
};
type ErrorBody = {
  code: string;
  message: string;
  details?: { issues?: Array<{ path: string; message: string }> } & Record<string, unknown>;
};
type Reply<T> = { status: number; headers: Headers; body: T; text: string };
type Request = { json?: unknown; raw?: string; contentType?: string };

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let dir: string;
let kairos: RunningKairos | undefined;
let url: string;

const start = async (): Promise<void> => {
  kairos = await startKairos(
    compileConfig({
      flags: { port: 0, host: '127.0.0.1', dataDir: dir, store: 'memory:', nodeId: 'api-node', logLevel: 'silent' },
    }),
  );
  url = kairos.url;
};

const call = async <T = unknown>(method: string, path: string, request: Request = {}): Promise<Reply<T>> => {
  const body = request.raw ?? (request.json === undefined ? undefined : JSON.stringify(request.json));
  const contentType = request.contentType ?? (body === undefined ? undefined : 'application/json');
  const res = await fetch(`${url}${path}`, {
    method,
    headers: contentType ? { 'content-type': contentType } : {},
    body,
  });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
};

const readLog = async (): Promise<LogEvent[]> => {
  const all: LogEvent[] = [];
  let from = 0;
  for (;;) {
    const page = await call<{ events: LogEvent[]; next: number }>('GET', `/api/events?from=${from}&limit=500`);
    expect(page.status).toBe(200);
    if (page.body.events.length === 0) return all;
    all.push(...page.body.events);
    from = page.body.next;
  }
};

const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** Tasks that never fire on their own during the test, so the log changes only by requests. */
const task = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  schedule: { every: '1h' },
  target: { topic: 'jobs' },
  timeout: '1h',
  ...extra,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-api-'));
  await start();
});

afterAll(async () => {
  await kairos?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('probes and documents', () => {
  it('/healthz answers 200 and /readyz 200 once the node runs', async () => {
    const health = await call<{ status: string; node: string }>('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', node: 'api-node' });
    const ready = await call<{ ready: boolean; status: string }>('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ ready: true, status: 'running' });
  });

  it('/openapi.json is an OpenAPI 3.1 document with the TaskSpec schema and every route', async () => {
    const res = await call<{
      openapi: string;
      info: { title: string; version: string };
      components: {
        schemas: Record<string, { type?: string; properties?: Record<string, unknown>; required?: string[] }>;
      };
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    }>('GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.title).toBe('Kairos');
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
    const spec = doc.components.schemas.TaskSpec;
    expect(spec?.type).toBe('object');
    expect(Object.keys(spec?.properties ?? {})).toEqual(
      expect.arrayContaining([
        'id',
        'name',
        'schedule',
        'target',
        'payload',
        'misfire',
        'overlap',
        'retry',
        'timeout',
        'labels',
      ]),
    );
    expect(spec?.required).toEqual(expect.arrayContaining(['id', 'schedule', 'target']));
    expect(doc.components.schemas.Error).toBeDefined();
    const routes: Array<[string, string]> = [
      ['/api/tasks', 'post'],
      ['/api/tasks', 'get'],
      ['/api/tasks/apply', 'post'],
      ['/api/tasks/{id}', 'get'],
      ['/api/tasks/{id}', 'put'],
      ['/api/tasks/{id}', 'delete'],
      ['/api/tasks/{id}/pause', 'post'],
      ['/api/tasks/{id}/resume', 'post'],
      ['/api/tasks/{id}/restore', 'post'],
      ['/api/tasks/{id}/trigger', 'post'],
      ['/api/tasks/{id}/history', 'get'],
      ['/api/events', 'get'],
      ['/healthz', 'get'],
      ['/readyz', 'get'],
      ['/metrics', 'get'],
    ];
    for (const [path, method] of routes) {
      expect(doc.paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
      expect(Object.keys(doc.paths[path]?.[method]?.responses ?? {}).length).toBeGreaterThan(0);
    }
    // Every $ref resolves inside the document.
    const refs = [...res.text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1] as string);
    expect(refs.length).toBeGreaterThan(0);
    for (const name of refs) expect(doc.components.schemas[name], name).toBeDefined();
  });
});

describe('task routes: success paths', () => {
  it('POST /api/tasks creates a task: 201, Location, the task view', async () => {
    const res = await call<TaskView>('POST', '/api/tasks', {
      json: task('alpha', { name: 'Alpha', payload: { n: 1 }, labels: { team: 'core' } }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe('/api/tasks/alpha');
    expect(res.body).toMatchObject({
      id: 'alpha',
      name: 'Alpha',
      status: 'active',
      lifecycle: 'idle',
      revision: 0,
      runs: 0,
      inFlight: [],
    });
    // The stored spec is compiled: durations in ms, defaults filled.
    expect(res.body.spec).toMatchObject({
      id: 'alpha',
      schedule: { every: 3_600_000 },
      target: { topic: 'jobs' },
      payload: { n: 1 },
      timeout: 3_600_000,
      overlap: 'skip',
      retry: { maxAttempts: 1 },
    });
    expect(res.body.nextFireAt).toMatch(ISO);
    expect(Date.parse(res.body.nextFireAt as string) - Date.now()).toBeGreaterThan(50 * 60_000);
  });

  it('POST /api/tasks accepts each schedule kind and target kind', async () => {
    const cron = await call<TaskView>('POST', '/api/tasks', {
      json: { id: 'beta', schedule: { cron: '0 0 3 1 1 *', timezone: 'Europe/Berlin' }, target: { topic: 'jobs' } },
    });
    expect(cron.status).toBe(201);
    expect(cron.body.spec?.schedule).toEqual({ cron: '0 0 3 1 1 *', timezone: 'Europe/Berlin' });
    const delay = await call<TaskView>('POST', '/api/tasks', {
      json: {
        id: 'gamma',
        schedule: { delayAfter: '15m' },
        target: { http: { url: 'http://127.0.0.1:9/hook', secret: 'a-secret-of-16-chars' } },
      },
    });
    expect(delay.status).toBe(201);
    expect(delay.body.spec?.schedule).toEqual({ delayAfter: 900_000 });
    expect(delay.body.spec?.target).toMatchObject({
      http: { url: 'http://127.0.0.1:9/hook', method: 'POST', timeout: 10_000 },
    });
    const at = await call<TaskView>('POST', '/api/tasks', {
      json: { id: 'delta', schedule: { at: '2999-01-01T00:00:00Z' }, target: { topic: 'jobs' } },
    });
    expect(at.status).toBe(201);
    expect(at.body.nextFireAt).toBe('2999-01-01T00:00:00.000Z');
  });

  it('views never show a webhook secret; sending a view back keeps the secret the task has', async () => {
    const viewed = (await call<TaskView>('GET', '/api/tasks/gamma')).body.spec as Record<string, unknown>;
    expect(JSON.stringify(viewed)).not.toContain('a-secret-of-16-chars');
    expect(viewed.target).toMatchObject({ http: { secret: '(secret is set)' } });
    const same = await call<{ result: string }>('PUT', '/api/tasks/gamma', { json: viewed });
    expect(same.body.result).toBe('unchanged');
    const changed = await call<{ result: string }>('PUT', '/api/tasks/gamma', {
      json: { ...viewed, schedule: { delayAfter: '20m' } },
    });
    expect(changed.body.result).toBe('updated');
    const update = (await readLog()).filter((e) => e.type === 'TaskUpdated' && e.data.taskId === 'gamma').at(-1);
    expect(update?.data.spec).toMatchObject({ target: { http: { secret: 'a-secret-of-16-chars' } } });
    const restore = await call('PUT', '/api/tasks/gamma', { json: { ...viewed, schedule: { delayAfter: '15m' } } });
    expect(restore.status).toBe(200);
  });

  it('POST /api/tasks with an existing id answers 409 and changes nothing', async () => {
    const res = await call<ErrorBody>('POST', '/api/tasks', { json: task('alpha', { schedule: { every: '5s' } }) });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('already_exists');
    expect(res.body.message).toContain('alpha');
    expect((await call<TaskView>('GET', '/api/tasks/alpha')).body.spec?.schedule).toEqual({ every: 3_600_000 });
  });

  it('GET /api/cluster describes a single node holding every task and leading itself', async () => {
    const res = await call<{
      mode: string;
      slotCount: number | null;
      members: Array<{ id: string }>;
      tasksPerNode: Record<string, number>;
    }>('GET', '/api/cluster');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      mode: 'single',
      connection: 'connected',
      slotCount: null,
      leader: (res.body as { nodeId?: string }).nodeId,
      unplaceable: [],
      slotsPerNode: null,
    });
    expect(res.body.members).toHaveLength(1);
    const total = (await call<{ total: number }>('GET', '/api/tasks?status=all')).body.total;
    const live = total - (await call<{ total: number }>('GET', '/api/tasks?status=deleted')).body.total;
    expect(Object.values(res.body.tasksPerNode).reduce((a, b) => a + b, 0)).toBe(live);
  });

  it('GET /api/tasks lists tasks by id, filters by status, pages with a cursor', async () => {
    type Board = { total: number; tasks: TaskView[]; next: string | null };
    const all = await call<Board>('GET', '/api/tasks');
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(4);
    expect(all.body.tasks.map((t) => t.id)).toEqual(['alpha', 'beta', 'delta', 'gamma']);
    const first = await call<Board>('GET', '/api/tasks?limit=2');
    expect(first.body.total).toBe(4);
    expect(first.body.tasks.map((t) => t.id)).toEqual(['alpha', 'beta']);
    const second = await call<Board>('GET', `/api/tasks?limit=2&cursor=${first.body.next}`);
    expect(second.body.tasks.map((t) => t.id)).toEqual(['delta', 'gamma']);
    expect(second.body.next).toBeNull();
    const paused = await call<Board>('GET', '/api/tasks?status=paused');
    expect(paused.body).toEqual({ total: 0, tasks: [], next: null });
  });

  it('GET /api/tasks/:id returns one task', async () => {
    const res = await call<TaskView>('GET', '/api/tasks/beta');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: 'beta', status: 'active', spec: { schedule: { cron: '0 0 3 1 1 *' } } });
    expect(res.body.nextFireAt).toMatch(ISO);
  });

  it('addresses a task by an id of the full 128 characters', async () => {
    const id = `x${'y'.repeat(127)}`;
    expect((await call('PUT', `/api/tasks/${id}`, { json: task(id) })).status).toBe(201);
    expect((await call<TaskView>('GET', `/api/tasks/${id}`)).body.id).toBe(id);
    expect((await call<TaskView>('DELETE', `/api/tasks/${id}`)).body.status).toBe('deleted');
  });

  it('PUT /api/tasks/:id upserts: created (201), unchanged (200, nothing appended), updated (200)', async () => {
    const created = await call<{ result: string; task: TaskView }>('PUT', '/api/tasks/epsilon', {
      json: { schedule: { every: '30m' }, target: { topic: 'jobs' } },
    });
    expect(created.status).toBe(201);
    expect(created.body.result).toBe('created');
    expect(created.body.task).toMatchObject({ id: 'epsilon', status: 'active', revision: 0 });

    const before = (await readLog()).length;
    // The same document, spelled differently (ms instead of text, the id repeated): still unchanged.
    const same = await call<{ result: string; task: TaskView }>('PUT', '/api/tasks/epsilon', {
      json: { id: 'epsilon', schedule: { every: 1_800_000 }, target: { topic: 'jobs' }, overlap: 'skip' },
    });
    expect(same.status).toBe(200);
    expect(same.body.result).toBe('unchanged');
    expect(same.body.task.revision).toBe(0);
    expect((await readLog()).length).toBe(before);

    const updated = await call<{ result: string; task: TaskView }>('PUT', '/api/tasks/epsilon', {
      json: { schedule: { every: '45m' }, target: { topic: 'other' } },
    });
    expect(updated.status).toBe(200);
    expect(updated.body.result).toBe('updated');
    expect(updated.body.task.revision).toBe(1);
    expect(updated.body.task.spec).toMatchObject({ schedule: { every: 2_700_000 }, target: { topic: 'other' } });
    const log = await readLog();
    expect(log.length).toBe(before + 1);
    expect(log.at(-1)).toMatchObject({ type: 'TaskUpdated', stream: 'kairos-task-epsilon', revision: 1 });
  });

  it('POST /api/tasks/apply creates, updates and leaves unchanged in one request, one event per change', async () => {
    await call('PUT', '/api/tasks/apply-same', { json: task('apply-same') });
    await call('PUT', '/api/tasks/apply-changed', { json: task('apply-changed') });
    const before = (await readLog()).length;
    const res = await call<{
      created: number;
      updated: number;
      unchanged: number;
      refused: number;
      tasks: { id: string; result: string }[];
    }>('POST', '/api/tasks/apply', {
      json: {
        tasks: [task('apply-new'), task('apply-same'), task('apply-changed', { schedule: { every: '2h' } })],
        reason: 'declared in bulk',
      },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ created: 1, updated: 1, unchanged: 1, refused: 0 });
    expect(res.body.tasks).toEqual([
      { id: 'apply-new', result: 'created' },
      { id: 'apply-same', result: 'unchanged' },
      { id: 'apply-changed', result: 'updated' },
    ]);
    const added = (await readLog()).slice(before);
    expect(added.map((e) => `${e.type} ${e.stream}`).sort()).toEqual([
      'TaskCreated kairos-task-apply-new',
      'TaskUpdated kairos-task-apply-changed',
    ]);
    expect(added.every((e) => (e.data as { reason?: string }).reason === 'declared in bulk')).toBe(true);
    expect((await call<TaskView>('GET', '/api/tasks/apply-changed')).body.spec).toMatchObject({
      schedule: { every: 7_200_000 },
    });
  });

  it('POST /api/tasks/apply refuses a request with a bad document whole: 400 naming each field, nothing written', async () => {
    const before = (await readLog()).length;
    const bad = await call<ErrorBody>('POST', '/api/tasks/apply', {
      json: {
        tasks: [task('apply-ok'), task('apply-bad', { schedule: { every: 'soon' } }), 'not a task', task('apply-ok')],
      },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('validation_failed');
    const paths = (bad.body.details as { issues: { path: string }[] }).issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['tasks[1].schedule.every', 'tasks[2]', 'tasks[3].id']));
    expect((await call('GET', '/api/tasks/apply-ok')).status).toBe(404);
    expect((await readLog()).length).toBe(before);

    const empty = await call<ErrorBody>('POST', '/api/tasks/apply', { json: { tasks: [] } });
    expect(empty.status).toBe(400);
    expect(empty.body.message).toMatch(/^tasks: must list at least one task/);
    const missing = await call<ErrorBody>('POST', '/api/tasks/apply', { json: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.message).toMatch(/^tasks:/);
  });

  it('POST /api/tasks/apply refuses one task the node cannot change, with its reason, and applies the others', async () => {
    await call('PUT', '/api/tasks/apply-gone', { json: task('apply-gone') });
    await call('DELETE', '/api/tasks/apply-gone');
    const res = await call<{
      refused: number;
      created: number;
      tasks: { id: string; result: string; error?: ErrorBody }[];
    }>('POST', '/api/tasks/apply', {
      json: { tasks: [task('apply-gone', { schedule: { every: '3h' } }), task('apply-fresh')] },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ refused: 1, created: 1 });
    const gone = res.body.tasks.find((t) => t.id === 'apply-gone');
    expect(gone).toMatchObject({ result: 'refused', error: { code: 'illegal_state' } });
    expect(gone?.error?.message).toMatch(/deleted/);
    expect((await call<TaskView>('GET', '/api/tasks/apply-fresh')).body.status).toBe('active');
  });

  it('pause and resume are idempotent', async () => {
    const paused = await call<TaskView>('POST', '/api/tasks/beta/pause', { json: { reason: 'maintenance' } });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ id: 'beta', status: 'paused', nextFireAt: null });
    const revision = paused.body.revision;
    const again = await call<TaskView>('POST', '/api/tasks/beta/pause');
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'paused', revision });
    expect((await call<{ tasks: TaskView[] }>('GET', '/api/tasks?status=paused')).body.tasks.map((t) => t.id)).toEqual([
      'beta',
    ]);

    const resumed = await call<TaskView>('POST', '/api/tasks/beta/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ status: 'active', revision: revision + 1 });
    expect(resumed.body.nextFireAt).toMatch(ISO);
    const resumedAgain = await call<TaskView>('POST', '/api/tasks/beta/resume');
    expect(resumedAgain.body).toMatchObject({ status: 'active', revision: revision + 1 });
    const log = await readLog();
    expect(log.filter((e) => e.stream === 'kairos-task-beta').map((e) => e.type)).toEqual([
      'TaskCreated',
      'TaskPaused',
      'TaskResumed',
    ]);
    expect(log.find((e) => e.type === 'TaskPaused')?.data).toMatchObject({ taskId: 'beta', reason: 'maintenance' });
  });

  it('DELETE is soft: the task stays readable as deleted, refuses actions, and restore brings it back', async () => {
    const deleted = await call<TaskView>('DELETE', '/api/tasks/gamma');
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ id: 'gamma', status: 'deleted', nextFireAt: null });
    expect((await call<TaskView>('DELETE', '/api/tasks/gamma')).body.status).toBe('deleted');
    expect((await call<TaskView>('GET', '/api/tasks/gamma')).body.status).toBe('deleted');
    expect(
      (await call<{ tasks: TaskView[] }>('GET', '/api/tasks?status=deleted')).body.tasks.map((t) => t.id),
    ).toContain('gamma');
    expect(
      (await call<{ tasks: TaskView[] }>('GET', '/api/tasks?status=active')).body.tasks.map((t) => t.id),
    ).not.toContain('gamma');

    const pause = await call<ErrorBody>('POST', '/api/tasks/gamma/pause');
    expect(pause.status).toBe(409);
    expect(pause.body.code).toBe('illegal_state');
    const recreate = await call<ErrorBody>('POST', '/api/tasks', { json: task('gamma') });
    expect(recreate.status).toBe(409);
    expect(recreate.body.code).toBe('already_exists');

    const restored = await call<TaskView>('POST', '/api/tasks/gamma/restore');
    expect(restored.status).toBe(200);
    expect(restored.body).toMatchObject({ status: 'active', spec: { schedule: { delayAfter: 900_000 } } });
    const again = await call<TaskView>('POST', '/api/tasks/gamma/restore');
    expect(again.body).toMatchObject({ status: 'active', revision: restored.body.revision });
  });

  it('trigger answers 202 with the fireId; the fire shows in history and in the log as TaskFired', async () => {
    const res = await call<{ fireId: string; task: TaskView }>('POST', '/api/tasks/alpha/trigger');
    expect(res.status).toBe(202);
    expect(res.body.fireId).toMatch(UUID);
    expect(res.body.task.id).toBe('alpha');
    const { fireId } = res.body;

    const history = await call<{ taskId: string; fires: Array<Record<string, unknown>>; gaps: unknown[] }>(
      'GET',
      '/api/tasks/alpha/history',
    );
    expect(history.status).toBe(200);
    expect(history.body.taskId).toBe('alpha');
    const fire = history.body.fires.find((f) => f.fireId === fireId);
    expect(fire).toMatchObject({ fireId, taskId: 'alpha', node: 'api-node', trigger: 'manual', attempts: 1 });
    expect(fire?.scheduledAt).toMatch(ISO);
    expect(fire?.firedAt).toMatch(ISO);
    expect(fire?.latenessMs).toBeGreaterThanOrEqual(0);
    expect(['in-flight', 'succeeded', 'failed', 'timed-out', 'retrying', 'cancelled']).toContain(fire?.status);

    const fired = await waitFor('TaskFired in the log', async () =>
      (await readLog()).find((e) => e.type === 'TaskFired' && e.data.fireId === fireId),
    );
    expect(fired).toMatchObject({ stream: 'kairos-task-alpha', type: 'TaskFired' });
    expect(fired.data).toMatchObject({ taskId: 'alpha', fireId, node: 'api-node', trigger: 'manual', attempt: 1 });
    expect(fired.data.scheduledAt).toBe(fire?.scheduledAt);
    expect(fired.data.firedAt).toBe(fire?.firedAt);
    expect(fired.data.epoch).toEqual(expect.any(Number));
    expect(fired.data.epoch as number).toBeGreaterThan(0);
    expect(fired.time).toMatch(ISO);
  });

  it('history honours limit', async () => {
    await call('POST', '/api/tasks/delta/trigger');
    await new Promise((r) => setTimeout(r, 5));
    await call('POST', '/api/tasks/delta/trigger');
    const one = await call<{ fires: Array<{ firedAt: string }> }>('GET', '/api/tasks/delta/history?limit=1');
    expect(one.status).toBe(200);
    expect(one.body.fires).toHaveLength(1);
    const both = await call<{ fires: Array<{ firedAt: string }> }>('GET', '/api/tasks/delta/history');
    expect(both.body.fires).toHaveLength(2);
    // Newest first.
    expect(Date.parse(both.body.fires[0]?.firedAt as string)).toBeGreaterThanOrEqual(
      Date.parse(both.body.fires[1]?.firedAt as string),
    );
    expect(one.body.fires[0]).toEqual(both.body.fires[0]);
  });

  it('GET /api/events returns the raw log in position order, paged by from (inclusive) and limit', async () => {
    const log = await readLog();
    expect(log.length).toBeGreaterThan(10);
    log.forEach((e, i) => {
      expect(e.position, 'positions are 1, 2, 3, ...').toBe(i + 1);
      expect(e).toEqual(
        expect.objectContaining({
          position: expect.any(Number),
          stream: expect.stringMatching(/^kairos-task-/),
          revision: expect.any(Number),
          type: expect.any(String),
          data: expect.any(Object),
          time: expect.stringMatching(ISO),
        }),
      );
    });
    expect(log[0]).toMatchObject({
      position: 1,
      stream: 'kairos-task-alpha',
      revision: 0,
      type: 'TaskCreated',
      data: { taskId: 'alpha', spec: { id: 'alpha' } },
    });

    const page = await call<{ events: LogEvent[]; next: number }>('GET', '/api/events?from=3&limit=2');
    expect(page.status).toBe(200);
    expect(page.body.events.map((e) => e.position)).toEqual([3, 4]);
    expect(page.body.next).toBe(5);
    expect(page.body.events).toEqual(log.slice(2, 4));
    const end = await call<{ events: LogEvent[]; next: number }>('GET', `/api/events?from=${log.length + 1}`);
    expect(end.body).toEqual({ events: [], next: log.length + 1 });
  });

  it('/metrics exposes kairos_ metrics in the Prometheus text format', async () => {
    const res = await call<string>('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/^# HELP kairos_fires_total /m);
    expect(res.text).toMatch(/^kairos_fires_total\{trigger="manual"\} 3$/m);
    expect(res.text).toMatch(/^kairos_tasks \d+$/m);
    // Every queue of the firing pipeline has a depth, and the bounded ones their bound.
    for (const queue of [
      'due_waiting',
      'held_ahead',
      'decisions_in_flight',
      'outcomes_waiting',
      'deliveries_pending',
      'deliveries_in_flight',
    ])
      expect(res.text).toMatch(new RegExp(`^kairos_queue_depth\\{queue="${queue}"\\} \\d+$`, 'm'));
    expect(res.text).toMatch(/^kairos_queue_bound\{queue="decisions_in_flight"\} 10000$/m);
    expect(res.text).toMatch(/^kairos_queue_bound\{queue="outcomes_waiting"\} 50000$/m);
    expect(res.text).toMatch(/^# TYPE kairos_fire_lateness_seconds histogram$/m);
    expect(res.text).toMatch(/^kairos_process_/m);
  });
});

type BadCase = { name: string; method: string; path: string; status: number; code: string; field?: string } & Request;

const create = (name: string, doc: Record<string, unknown>, field: string): BadCase => ({
  name,
  method: 'POST',
  path: '/api/tasks',
  json: doc,
  status: 400,
  code: 'validation_failed',
  field,
});
const withSchedule = (schedule: unknown) => ({ id: 'bad', schedule, target: { topic: 'jobs' } });
const withTarget = (target: unknown) => ({ id: 'bad', schedule: { every: '1s' }, target });

const badCases: BadCase[] = [
  // The body itself.
  {
    name: 'malformed JSON',
    method: 'POST',
    path: '/api/tasks',
    raw: '{"id": "bad",',
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'JSON followed by garbage',
    method: 'POST',
    path: '/api/tasks',
    raw: '{"id": "bad"} trailing',
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'an array body',
    method: 'POST',
    path: '/api/tasks',
    json: [task('bad')],
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'a string body',
    method: 'POST',
    path: '/api/tasks',
    json: 'bad',
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'a number body',
    method: 'POST',
    path: '/api/tasks',
    json: 42,
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'a null body',
    method: 'POST',
    path: '/api/tasks',
    raw: 'null',
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'an empty JSON body',
    method: 'POST',
    path: '/api/tasks',
    raw: '',
    contentType: 'application/json',
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  { name: 'no body at all', method: 'POST', path: '/api/tasks', status: 400, code: 'validation_failed', field: 'body' },
  {
    name: 'a text/plain body',
    method: 'POST',
    path: '/api/tasks',
    raw: JSON.stringify(task('bad')),
    contentType: 'text/plain',
    status: 415,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'a form body',
    method: 'POST',
    path: '/api/tasks',
    raw: 'id=bad',
    contentType: 'application/x-www-form-urlencoded',
    status: 415,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'a prototype-polluting body',
    method: 'POST',
    path: '/api/tasks',
    raw: '{"id":"bad","__proto__":{"admin":true}}',
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'PUT with an array body',
    method: 'PUT',
    path: '/api/tasks/bad',
    json: [],
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'PUT with malformed JSON',
    method: 'PUT',
    path: '/api/tasks/alpha',
    raw: '{',
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'PUT with a text/plain body',
    method: 'PUT',
    path: '/api/tasks/alpha',
    raw: '{}',
    contentType: 'text/plain',
    status: 415,
    code: 'validation_failed',
    field: 'body',
  },

  // Fields of the document.
  create('a missing id', { schedule: { every: '1s' }, target: { topic: 'jobs' } }, 'id'),
  create('an id not starting with a letter or digit', task('-bad'), 'id'),
  create('an id with a slash', task('a/b'), 'id'),
  create('an id of 129 characters', task('x'.repeat(129)), 'id'),
  create('a non-string id', task('x', { id: 7 }), 'id'),
  create('a missing schedule', { id: 'bad', target: { topic: 'jobs' } }, 'schedule'),
  create('a missing target', { id: 'bad', schedule: { every: '1s' } }, 'target'),
  create('an unknown top-level field', task('bad', { colour: 'red' }), 'colour'),
  create('a name over 200 characters', task('bad', { name: 'n'.repeat(201) }), 'name'),
  create('a schedule that is a string', withSchedule('every 5s'), 'schedule'),
  create('an empty schedule', withSchedule({}), 'schedule'),
  create('a schedule of two kinds', withSchedule({ every: '1s', cron: '* * * * *' }), 'schedule'),
  create('an unknown schedule field', withSchedule({ every: '1s', colour: 'red' }), 'schedule.colour'),
  create('cron: not an expression', withSchedule({ cron: 'not a cron' }), 'schedule.cron'),
  create('cron: minute 61', withSchedule({ cron: '61 * * * *' }), 'schedule.cron'),
  create('cron: 30 February never matches', withSchedule({ cron: '0 0 30 2 *' }), 'schedule.cron'),
  create('cron: empty', withSchedule({ cron: '' }), 'schedule.cron'),
  create('cron: a number', withSchedule({ cron: 5 }), 'schedule.cron'),
  create(
    'cron: an unknown time zone',
    withSchedule({ cron: '0 * * * *', timezone: 'Mars/Olympus_Mons' }),
    'schedule.timezone',
  ),
  create('cron: maxRuns 0', withSchedule({ cron: '0 * * * *', maxRuns: 0 }), 'schedule.maxRuns'),
  create('every: below 100ms', withSchedule({ every: '50ms' }), 'schedule.every'),
  create('every: zero', withSchedule({ every: 0 }), 'schedule.every'),
  create('every: negative ms', withSchedule({ every: -1000 }), 'schedule.every'),
  create('every: negative text', withSchedule({ every: '-5s' }), 'schedule.every'),
  create('every: garbage text', withSchedule({ every: 'soon' }), 'schedule.every'),
  create('every: fractional ms', withSchedule({ every: 1.5 }), 'schedule.every'),
  create('every: beyond any date', withSchedule({ every: 1e300 }), 'schedule.every'),
  create('every: 99999999 days', withSchedule({ every: '99999999d' }), 'schedule.every'),
  create('every: an object', withSchedule({ every: {} }), 'schedule.every'),
  create('every: a bad jitter', withSchedule({ every: '1s', jitter: '1y' }), 'schedule.jitter'),
  create('every: a bad startAt', withSchedule({ every: '1s', startAt: 'yesterday' }), 'schedule.startAt'),
  create(
    'every: endAt before startAt',
    withSchedule({ every: '1s', startAt: '2030-01-02T00:00:00Z', endAt: '2030-01-01T00:00:00Z' }),
    'schedule.endAt',
  ),
  create('delayAfter: unknown unit', withSchedule({ delayAfter: '10 parsecs' }), 'schedule.delayAfter'),
  create('delayAfter: below 100ms', withSchedule({ delayAfter: 99 }), 'schedule.delayAfter'),
  create('at: not an instant', withSchedule({ at: 'tomorrow' }), 'schedule.at'),
  create('at: month 13', withSchedule({ at: '2030-13-01T00:00:00Z' }), 'schedule.at'),
  create('at: no offset', withSchedule({ at: '2030-01-01T00:00:00' }), 'schedule.at'),
  create('at: epoch ms beyond any date', withSchedule({ at: 9e15 }), 'schedule.at'),
  create('at: negative epoch ms', withSchedule({ at: -1 }), 'schedule.at'),
  create('at: with an every field', withSchedule({ at: '2030-01-01T00:00:00Z', maxRuns: 2 }), 'schedule.maxRuns'),
  create('target: both topic and http', withTarget({ topic: 'jobs', http: { url: 'http://127.0.0.1/x' } }), 'target'),
  create('target: neither', withTarget({}), 'target'),
  create('target: a string', withTarget('jobs'), 'target'),
  create('target: a topic with a space', withTarget({ topic: 'two words' }), 'target.topic'),
  create('target: not a URL', withTarget({ http: { url: 'not a url' } }), 'target.http.url'),
  create('target: an ftp URL', withTarget({ http: { url: 'ftp://127.0.0.1/x' } }), 'target.http.url'),
  create(
    'target: a short secret',
    withTarget({ http: { url: 'http://127.0.0.1/x', secret: 'short' } }),
    'target.http.secret',
  ),
  create(
    'target: method GET',
    withTarget({ http: { url: 'http://127.0.0.1/x', method: 'GET' } }),
    'target.http.method',
  ),
  create(
    'target: a numeric header',
    withTarget({ http: { url: 'http://127.0.0.1/x', headers: { 'x-n': 1 } } }),
    'target.http.headers.x-n',
  ),
  create(
    'target: a bad timeout',
    withTarget({ http: { url: 'http://127.0.0.1/x', timeout: 'never' } }),
    'target.http.timeout',
  ),
  create(
    'target: an unknown http field',
    withTarget({ http: { url: 'http://127.0.0.1/x', verb: 'POST' } }),
    'target.http.verb',
  ),
  // Deep enough to overflow a recursive validator; written by hand, as JSON.stringify would overflow too.
  {
    name: 'a payload nested too deep',
    method: 'POST',
    path: '/api/tasks',
    raw: `${JSON.stringify(task('bad')).slice(0, -1)},"payload":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
    status: 400,
    code: 'validation_failed',
    field: 'payload',
  },
  create('timeout: zero', task('bad', { timeout: '0ms' }), 'timeout'),
  create('timeout: garbage', task('bad', { timeout: 'forever' }), 'timeout'),
  create('timeout: negative', task('bad', { timeout: -1 }), 'timeout'),
  create('retry: zero attempts', task('bad', { retry: { maxAttempts: 0 } }), 'retry.maxAttempts'),
  create('retry: multiplier 100', task('bad', { retry: { backoff: { multiplier: 100 } } }), 'retry.backoff.multiplier'),
  create('misfire: unknown policy', task('bad', { misfire: { policy: 'never' } }), 'misfire.policy'),
  create('overlap: unknown policy', task('bad', { overlap: 'queue' }), 'overlap'),
  create('labels: a number value', task('bad', { labels: { team: 1 } }), 'labels.team'),
  {
    name: 'PUT: an id in the body other than the path',
    method: 'PUT',
    path: '/api/tasks/alpha',
    json: task('beta'),
    status: 400,
    code: 'validation_failed',
    field: 'id',
  },
  {
    name: 'PUT: a bad cron on an existing task',
    method: 'PUT',
    path: '/api/tasks/alpha',
    json: withSchedule({ cron: '* * *' }),
    status: 400,
    code: 'validation_failed',
    field: 'schedule.cron',
  },
  {
    name: 'PUT: a bad every on a new task',
    method: 'PUT',
    path: '/api/tasks/zeta',
    json: { schedule: { every: '10ms' }, target: { topic: 'jobs' } },
    status: 400,
    code: 'validation_failed',
    field: 'schedule.every',
  },
  {
    name: 'POST: an existing id',
    method: 'POST',
    path: '/api/tasks',
    json: task('beta'),
    status: 409,
    code: 'already_exists',
  },
  {
    name: 'DELETE: a reason that is a number',
    method: 'DELETE',
    path: '/api/tasks/beta',
    json: { reason: 5 },
    status: 400,
    code: 'validation_failed',
    field: 'body.reason',
  },
  {
    name: 'pause: a body that is an array',
    method: 'POST',
    path: '/api/tasks/beta/pause',
    json: [],
    status: 400,
    code: 'validation_failed',
    field: 'body',
  },
  {
    name: 'pause: an over-long reason',
    method: 'POST',
    path: '/api/tasks/beta/pause',
    json: { reason: 'r'.repeat(501) },
    status: 400,
    code: 'validation_failed',
    field: 'body.reason',
  },

  // Ids in the path.
  ...(
    [
      ['GET', ''],
      ['PUT', ''],
      ['DELETE', ''],
      ['POST', '/pause'],
      ['POST', '/resume'],
      ['POST', '/restore'],
      ['POST', '/trigger'],
      ['GET', '/history'],
    ] as const
  ).flatMap(([method, suffix]): BadCase[] => [
    {
      name: `${method} ${suffix || '/'}: a bad id`,
      method,
      path: `/api/tasks/-bad${suffix}`,
      ...(method === 'PUT' ? { json: task('-bad') } : {}),
      status: 400,
      code: 'validation_failed',
      field: 'id',
    },
    {
      name: `${method} ${suffix || '/'}: an id with a space`,
      method,
      path: `/api/tasks/bad%20id${suffix}`,
      ...(method === 'PUT' ? { json: task('bad id') } : {}),
      status: 400,
      code: 'validation_failed',
      field: 'id',
    },
    {
      name: `${method} ${suffix || '/'}: an id of 2000 characters`,
      method,
      path: `/api/tasks/${'x'.repeat(2000)}${suffix}`,
      status: 400,
      code: 'validation_failed',
    },
  ]),
  {
    name: 'an undecodable escape in the path',
    method: 'GET',
    path: '/api/tasks/%E0%A4%A',
    status: 400,
    code: 'validation_failed',
    field: 'url',
  },

  // Unknown tasks.
  ...(
    [
      ['GET', ''],
      ['DELETE', ''],
      ['POST', '/pause'],
      ['POST', '/resume'],
      ['POST', '/restore'],
      ['POST', '/trigger'],
      ['GET', '/history'],
    ] as const
  ).map(([method, suffix]): BadCase => ({
    name: `${method} ${suffix || '/'}: an unknown task`,
    method,
    path: `/api/tasks/nobody${suffix}`,
    status: 404,
    code: 'not_found',
  })),

  // Query parameters.
  {
    name: 'list: status=foo',
    method: 'GET',
    path: '/api/tasks?status=foo',
    status: 400,
    code: 'validation_failed',
    field: 'status',
  },
  {
    name: 'list: limit=0',
    method: 'GET',
    path: '/api/tasks?limit=0',
    status: 400,
    code: 'validation_failed',
    field: 'limit',
  },
  {
    name: 'list: limit=abc',
    method: 'GET',
    path: '/api/tasks?limit=abc',
    status: 400,
    code: 'validation_failed',
    field: 'limit',
  },
  {
    name: 'list: offset=-1',
    method: 'GET',
    path: '/api/tasks?offset=-1',
    status: 400,
    code: 'validation_failed',
    field: 'offset',
  },
  {
    name: 'events: from=-1',
    method: 'GET',
    path: '/api/events?from=-1',
    status: 400,
    code: 'validation_failed',
    field: 'from',
  },
  {
    name: 'events: from=1.5',
    method: 'GET',
    path: '/api/events?from=1.5',
    status: 400,
    code: 'validation_failed',
    field: 'from',
  },
  {
    name: 'events: from=0x10',
    method: 'GET',
    path: '/api/events?from=0x10',
    status: 400,
    code: 'validation_failed',
    field: 'from',
  },
  {
    name: 'events: from empty',
    method: 'GET',
    path: '/api/events?from=',
    status: 400,
    code: 'validation_failed',
    field: 'from',
  },
  {
    name: 'events: from twice',
    method: 'GET',
    path: '/api/events?from=1&from=2',
    status: 400,
    code: 'validation_failed',
    field: 'from',
  },
  {
    name: 'events: from beyond 2^53',
    method: 'GET',
    path: '/api/events?from=99999999999999999999',
    status: 400,
    code: 'validation_failed',
    field: 'from',
  },
  {
    name: 'events: limit=0',
    method: 'GET',
    path: '/api/events?limit=0',
    status: 400,
    code: 'validation_failed',
    field: 'limit',
  },
  {
    name: 'events: limit=abc',
    method: 'GET',
    path: '/api/events?limit=abc',
    status: 400,
    code: 'validation_failed',
    field: 'limit',
  },
  {
    name: 'events: limit=10001',
    method: 'GET',
    path: '/api/events?limit=10001',
    status: 400,
    code: 'validation_failed',
    field: 'limit',
  },
  {
    name: 'history: limit=abc',
    method: 'GET',
    path: '/api/tasks/alpha/history?limit=abc',
    status: 400,
    code: 'validation_failed',
    field: 'limit',
  },

  // Unknown routes and methods.
  { name: 'an unknown route', method: 'GET', path: '/api/nothing', status: 404, code: 'not_found' },
  { name: 'an unknown action', method: 'POST', path: '/api/tasks/alpha/explode', status: 404, code: 'not_found' },
  {
    name: 'PATCH on a task',
    method: 'PATCH',
    path: '/api/tasks/alpha',
    json: { name: 'x' },
    status: 404,
    code: 'not_found',
  },
];

describe('bad input', () => {
  let logBefore: LogEvent[];
  let tasksBefore: TaskView[];

  beforeAll(async () => {
    logBefore = await readLog();
    tasksBefore = (await call<{ tasks: TaskView[] }>('GET', '/api/tasks')).body.tasks;
  });

  it.each(badCases)('$name → $status $code $field', async (c) => {
    const res = await call<ErrorBody>(c.method, c.path, c);
    expect(res.status, res.text).toBe(c.status);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(res.body.code).toBe(c.code);
    expect(typeof res.body.message).toBe('string');
    expect(res.body.message.length).toBeGreaterThan(0);
    if (c.code === 'validation_failed') {
      const issues = res.body.details?.issues ?? [];
      expect(issues.length, res.text).toBeGreaterThan(0);
      for (const issue of issues) expect(issue.message.length).toBeGreaterThan(0);
      if (c.field !== undefined)
        expect(
          issues.map((i) => i.path),
          res.text,
        ).toContain(c.field);
    }
  });

  it('reports every bad field of one document at once', async () => {
    const res = await call<ErrorBody>('POST', '/api/tasks', {
      json: { id: '-x', schedule: { cron: '99 * * * *' }, target: { http: { url: 'nope' } }, overlap: 'queue' },
    });
    expect(res.status).toBe(400);
    expect(res.body.details?.issues?.map((i) => i.path).sort()).toEqual([
      'id',
      'overlap',
      'schedule.cron',
      'target.http.url',
    ]);
  });

  it('leaves the log and every task exactly as the good requests left them', async () => {
    expect(await readLog()).toEqual(logBefore);
    expect((await call<{ tasks: TaskView[] }>('GET', '/api/tasks')).body.tasks).toEqual(tasksBefore);
    for (const id of ['bad', '-bad', 'zeta', 'nobody', 'bad id']) {
      expect(logBefore.some((e) => e.stream === `kairos-task-${id}`)).toBe(false);
    }
    // Only what the good requests asked for, in order (the 128-character task aside).
    const byStream = (stream: string) =>
      logBefore.filter((e) => e.stream === `kairos-task-${stream}`).map((e) => e.type);
    expect(byStream('alpha')).toEqual(['TaskCreated', 'TaskAssigned', 'TaskFired']);
    expect(byStream('beta')).toEqual(['TaskCreated', 'TaskPaused', 'TaskResumed']);
    expect(byStream('gamma')).toEqual(['TaskCreated', 'TaskUpdated', 'TaskUpdated', 'TaskDeleted', 'TaskRestored']);
    expect(byStream('delta')).toEqual(['TaskCreated', 'TaskAssigned', 'TaskFired', 'TaskFired']);
    expect(byStream('epsilon')).toEqual(['TaskCreated', 'TaskUpdated']);
  });

  it('the node is still ready and acts on good requests', async () => {
    expect((await call('GET', '/readyz')).status).toBe(200);
    const res = await call<TaskView>('POST', '/api/tasks', { json: task('omega') });
    expect(res.status).toBe(201);
    const log = await readLog();
    expect(log.slice(0, logBefore.length)).toEqual(logBefore);
    expect(log.slice(logBefore.length).map((e) => [e.position, e.type, e.stream])).toEqual([
      [logBefore.length + 1, 'TaskCreated', 'kairos-task-omega'],
    ]);
  });
});
