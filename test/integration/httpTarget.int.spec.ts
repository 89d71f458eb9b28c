import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FireDelivery, FireOutcome } from '../../src/targets/dispatcher.js';
import { HttpTarget, signatureOf, verifySignature } from '../../src/targets/http/httpTarget.js';
import { sleep, until } from './support/waiting.js';

type Received = { method: string; url: string; headers: IncomingMessage['headers']; body: string; aborted: boolean };

const SECRET = 'a-webhook-secret-of-some-length';

describe('HttpTarget against a local HTTP server', () => {
  let server: Server;
  let base: string;
  let received: Received[];
  let outcomes: FireOutcome[];
  let target: HttpTarget;

  /** `/ok` answers 204, `/fail` 500 with a long body, `/slow` never answers. */
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const entry: Received = { method: req.method!, url: req.url!, headers: req.headers, body: '', aborted: false };
    received.push(entry);
    req.on('data', (chunk: Buffer) => (entry.body += chunk.toString()));
    res.on('close', () => {
      if (!res.writableFinished) entry.aborted = true;
    });
    req.on('end', () => {
      if (req.url === '/ok') res.writeHead(204).end();
      else if (req.url === '/fail')
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`database\n down ${'x'.repeat(5000)}`);
    });
  };

  const fireTo = (
    path: string,
    http: Partial<{ timeout: number; secret: string; method: 'POST' | 'PUT'; headers: Record<string, string> }> = {},
    deadlineIn = 10_000,
  ): FireDelivery => ({
    taskId: 'sync-ledger',
    fireId: randomUUID(),
    attempt: 3,
    trigger: 'retry',
    scheduledAt: '2026-03-01T10:00:00.000Z',
    firedAt: '2026-03-01T10:00:00.004Z',
    deadline: Date.now() + deadlineIn,
    payload: { ledger: 'eu' },
    target: { http: { url: `${base}${path}`, method: 'POST', headers: {}, timeout: 5_000, ...http } },
    node: 'node-1',
  });

  beforeEach(async () => {
    received = [];
    outcomes = [];
    server = createServer(handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    target = new HttpTarget((outcome) => outcomes.push(outcome));
  });

  afterEach(async () => {
    await target.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('posts the fire as JSON with idempotency and Kairos headers, and reports success', async () => {
    const fire = fireTo('/ok', { headers: { 'x-team': 'ledger', 'idempotency-key': 'forged' } });
    target.deliver(fire);
    await until(() => outcomes.length === 1, 'the outcome');

    const [request] = received;
    expect(request!.method).toBe('POST');
    expect(JSON.parse(request!.body)).toEqual({
      taskId: 'sync-ledger',
      fireId: fire.fireId,
      attempt: 3,
      scheduledAt: '2026-03-01T10:00:00.000Z',
      firedAt: '2026-03-01T10:00:00.004Z',
      trigger: 'retry',
      payload: { ledger: 'eu' },
    });
    expect(request!.headers).toMatchObject({
      'content-type': 'application/json',
      'idempotency-key': fire.fireId,
      'x-kairos-task-id': 'sync-ledger',
      'x-kairos-fire-id': fire.fireId,
      'x-kairos-attempt': '3',
      'x-team': 'ledger',
    });
    expect(Math.abs(Number(request!.headers['x-kairos-timestamp']) - Date.now() / 1000)).toBeLessThan(5);
    expect(request!.headers['x-kairos-signature']).toBeUndefined();
    expect(outcomes[0]).toMatchObject({ taskId: 'sync-ledger', fireId: fire.fireId, attempt: 3, status: 'succeeded' });
    expect(outcomes[0]!.details).toEqual([{ status: 'succeeded', httpStatus: 204 }]);
  });

  it('signs the request so that verifySignature accepts it and rejects tampering', async () => {
    target.deliver(fireTo('/ok', { secret: SECRET, method: 'PUT' }));
    await until(() => outcomes.length === 1, 'the outcome');
    const [{ method, headers, body }] = received as [Received];
    const timestamp = headers['x-kairos-timestamp'] as string;
    const signature = headers['x-kairos-signature'] as string;

    expect(method).toBe('PUT');
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, timestamp, body, signature)).toBe(true);
    expect(verifySignature(SECRET, timestamp, Buffer.from(body), signature, { toleranceSeconds: 300 })).toBe(true);
    expect(verifySignature(SECRET, timestamp, body.replace('eu', 'us'), signature)).toBe(false);
    expect(verifySignature(`${SECRET}!`, timestamp, body, signature)).toBe(false);
    expect(verifySignature(SECRET, Number(timestamp) + 1, body, signature)).toBe(false);
    expect(verifySignature(SECRET, timestamp, body, 'sha256=abc')).toBe(false);
    expect(verifySignature(SECRET, timestamp, body, undefined)).toBe(false);
    const old = Number(timestamp) - 3600;
    expect(verifySignature(SECRET, old, body, signatureOf(SECRET, old, body), { toleranceSeconds: 300 })).toBe(false);
  });

  it('reports a non-2xx answer as failed with the status and the start of the body', async () => {
    target.deliver(fireTo('/fail'));
    await until(() => outcomes.length === 1, 'the outcome');
    const expected = `HTTP 500: ${`database down ${'x'.repeat(5000)}`.slice(0, 200)}`;
    expect(outcomes[0]).toMatchObject({ status: 'failed', message: expected });
    expect(outcomes[0]!.details).toEqual([{ status: 'failed', httpStatus: 500, message: expected }]);
  });

  it('fails an attempt whose request outlives http.timeout, aborting the request', async () => {
    target.deliver(fireTo('/slow', { timeout: 150 }));
    await until(() => outcomes.length === 1, 'the outcome');
    expect(outcomes[0]).toMatchObject({ status: 'failed', message: 'timed out after 150ms' });
    await until(() => received[0]?.aborted === true, 'the server to see the request aborted');
  });

  it('reports nothing when the deadline comes before http.timeout (the runtime records that timeout)', async () => {
    target.deliver(fireTo('/slow', { timeout: 5_000 }, 150));
    await until(() => received[0]?.aborted === true, 'the request to be aborted at the deadline');
    await sleep(50);
    expect(outcomes).toHaveLength(0);
  });

  it('aborts the in-flight request on cancel and reports nothing', async () => {
    const fire = fireTo('/slow');
    target.deliver(fire);
    await until(() => received.length === 1, 'the request');
    target.cancel(fire.fireId, fire.attempt);
    await until(() => received[0]!.aborted, 'the server to see the request aborted');
    await sleep(50);
    expect(outcomes).toHaveLength(0);
  });

  it('reports a network error as failed with its reason', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const fire = fireTo('/ok');
    if (!('http' in fire.target)) throw new Error('unreachable');
    fire.target.http.url = `http://127.0.0.1:${port}/ok`;
    target.deliver(fire);
    await until(() => outcomes.length === 1, 'the outcome');
    expect(outcomes[0]!.status).toBe('failed');
    expect(outcomes[0]!.message).toMatch(/^request failed: .*ECONNREFUSED/);
  });

  it('delivers a repeated deliver() of the same attempt once', async () => {
    const fire = fireTo('/ok');
    target.deliver(fire);
    target.deliver(fire);
    await until(() => outcomes.length === 1, 'the outcome');
    await sleep(50);
    expect(received).toHaveLength(1);
    expect(outcomes).toHaveLength(1);
  });
});
