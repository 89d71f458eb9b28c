import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKairos, type RunningKairos } from '../../src/app/startKairos.js';
import { compileConfig } from '../../src/config/config.js';
import { READ_MODEL_STREAMS } from '../../src/projections/projectedEvent.js';
import { readSse, type SseMessage } from '../support/sseClient.js';

/**
 * `GET /api/stream` of a real node (log in SQLite, read side in its child process), read as a client
 * reads it: resuming with `Last-Event-ID` misses nothing and repeats nothing, filters hold, board rows
 * come with the events, and a subscriber that stops reading is told why and disconnected.
 */

let dir: string;
let kairos: RunningKairos;
let hooks: Server;
let hookUrl: string;

const api = (path: string, init?: RequestInit) => fetch(`${kairos.url}${path}`, init);

const createTask = async (id: string, every = '200ms', extra: Record<string, unknown> = {}) => {
  const res = await api('/api/tasks', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id, schedule: { every }, target: { http: { url: hookUrl } }, overlap: 'allow', ...extra }),
  });
  expect(res.status).toBe(201);
};

/** Reads messages until `done` says so (or 20 s pass), then disconnects. */
const collect = async (
  path: string,
  done: (messages: SseMessage[]) => boolean,
  lastEventId?: string,
): Promise<SseMessage[]> => {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 20_000);
  const messages: SseMessage[] = [];
  try {
    for await (const message of readSse(`${kairos.url}${path}`, {
      signal: abort.signal,
      ...(lastEventId ? { lastEventId } : {}),
    })) {
      messages.push(message);
      if (done(messages)) break;
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return messages;
};

const idsOf = (messages: SseMessage[]): number[] => messages.filter((m) => m.id !== undefined).map((m) => Number(m.id));

/** Positions of the events the feed carries (task and cluster streams), after `after` up to `upTo`. */
const logPositions = async (after: number, upTo: number): Promise<number[]> =>
  (await kairos.store.readAll({ after: BigInt(after) }))
    .filter((e) => Number(e.position) <= upTo && READ_MODEL_STREAMS.some((p) => e.stream.startsWith(p)))
    .map((e) => Number(e.position));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-feed-'));
  hooks = createServer((_req, res) => res.writeHead(200).end('ok'));
  await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hooks.address() as { port: number }).port}/hook`;
  kairos = await startKairos(
    compileConfig({
      env: { KAIROS_STREAM_MAX_BUFFER: '65536', KAIROS_STREAM_HEARTBEAT: '1s' },
      flags: { port: 0, host: '127.0.0.1', dataDir: dir, nodeId: 'feed-node', logLevel: 'silent' },
    }),
  );
  for (const id of ['a', 'b', 'c', 'd']) await createTask(id);
});

afterAll(async () => {
  await kairos?.close();
  await new Promise((resolve) => hooks.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

describe('live feed (GET /api/stream)', () => {
  it('resuming with Last-Event-ID misses nothing and repeats nothing', async () => {
    const first = await collect('/api/stream?after=0', (m) => idsOf(m).length >= 60);
    const lastId = idsOf(first).at(-1) as number;
    // The subscriber is away while the tasks go on firing.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const target = lastId + 150;
    const second = await collect('/api/stream', (m) => (idsOf(m).at(-1) ?? 0) >= target, String(lastId));
    const received = [...idsOf(first), ...idsOf(second)];
    expect(new Set(received).size).toBe(received.length);
    expect(received).toEqual(await logPositions(0, received.at(-1) as number));
    for (const m of [...first, ...second].filter((m) => m.id !== undefined)) {
      const body = JSON.parse(m.data) as { position: number; type: string };
      expect(body.position).toBe(Number(m.id));
      expect(body.type).toBe(m.event);
    }
  });

  it('filters by task and event type, and sends the board rows those events changed', async () => {
    const messages = await collect(
      '/api/stream?task=b&type=TaskFired,board',
      (m) => m.filter((x) => x.event === 'TaskFired').length >= 5 && m.some((x) => x.event === 'board'),
    );
    expect(messages.every((m) => m.event === 'TaskFired' || m.event === 'board')).toBe(true);
    for (const m of messages) {
      const body = JSON.parse(m.data) as { taskId?: string; task?: { id: string; runs: number } };
      expect(m.event === 'board' ? body.task?.id : body.taskId).toBe('b');
    }
    const board = messages
      .filter((m) => m.event === 'board')
      .map((m) => JSON.parse(m.data) as { task: { runs: number } });
    expect(board.at(-1)?.task.runs).toBeGreaterThan(0);
  });

  it('never shows a webhook secret', async () => {
    await createTask('signed', '1h', { target: { http: { url: hookUrl, secret: 'a-very-secret-signing-key' } } });
    const messages = await collect('/api/stream?after=0&task=signed', (m) => m.some((x) => x.event === 'TaskCreated'));
    expect(messages.map((m) => m.data).join('')).not.toContain('a-very-secret-signing-key');
    expect(messages.find((m) => m.event === 'TaskCreated')?.data).toContain('(secret is set)');
  });

  it('a subscriber that stops reading is disconnected with a stated reason', async () => {
    const payload = 'x'.repeat(4_000);
    for (let i = 0; i < 300; i++) await createTask(`bulky-${i}`, '1h', { payload: { blob: payload } });
    const response = await fetch(`${kairos.url}/api/stream?after=0`);
    // Nothing is read for a while: the node's buffer for this subscriber passes its 64 KiB bound.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const text = await response.text();
    expect(text.trimEnd().split('\n\n').at(-1)).toMatch(/^event: error\ndata: .*"slow_consumer"/);
  });

  it('refuses a bad Last-Event-ID or filter with a 400 naming it', async () => {
    // Past the largest position as well: it would wait, silently, for ever.
    for (const id of ['yesterday', '99999999999999999999']) {
      const badId = await api('/api/stream', { headers: { 'last-event-id': id } });
      expect(badId.status, id).toBe(400);
      expect(((await badId.json()) as { details: { issues: Array<{ path: string }> } }).details.issues[0]?.path).toBe(
        'Last-Event-ID',
      );
    }
    for (const [query, path] of [
      ['type=TaskExploded', 'type'],
      ['task=no/slash', 'task'],
      ['after=-3', 'after'],
      ['colour=red', 'colour'],
    ]) {
      const res = await api(`/api/stream?${query}`);
      expect(res.status, query).toBe(400);
      const body = (await res.json()) as { details: { issues: Array<{ path: string }> } };
      // A list names the bad element (`type[0]`).
      expect(
        body.details.issues.map((i) => i.path.replace(/\[\d+\]$/, '')),
        query,
      ).toContain(path);
    }
  });
});

describe.each([
  ['in its child process (SQLite log)', false],
  ['in the node process (in-memory log)', true],
])('a live feed served %s', (_where, inMemory) => {
  it('delivers a ~6 MB backlog whole to a subscriber that reads, however far past the 1 MiB buffer', async () => {
    const data = mkdtempSync(join(tmpdir(), 'kairos-feed-backlog-'));
    const node = await startKairos(
      compileConfig({
        flags: {
          port: 0,
          host: '127.0.0.1',
          ...(inMemory ? { store: 'memory:' } : { dataDir: data }),
          nodeId: 'backlog-node',
          logLevel: 'silent',
        },
      }),
    );
    try {
      // Twelve definitions of ~500 KB each: the backlog is six times the node's buffer for a subscriber.
      const payload = { blob: 'x'.repeat(500_000) };
      for (let i = 0; i < 12; i++) {
        const res = await fetch(`${node.url}/api/tasks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id: `big-${i}`, schedule: { every: '1h' }, target: { topic: 'big' }, payload }),
        });
        expect(res.status).toBe(201);
      }
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 20_000);
      const received: SseMessage[] = [];
      try {
        for await (const message of readSse(`${node.url}/api/stream?after=0&type=TaskCreated`, {
          signal: abort.signal,
        })) {
          received.push(message);
          if (message.event === 'error' || received.filter((m) => m.id !== undefined).length === 12) break;
        }
      } catch (err) {
        if (!abort.signal.aborted) throw err;
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
      expect(received.filter((m) => m.event === 'error')).toEqual([]);
      expect(received.filter((m) => m.id !== undefined)).toHaveLength(12);
    } finally {
      await node.close();
      rmSync(data, { recursive: true, force: true });
    }
  });
});
