import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { FireDelivery, FireOutcome } from '../../src/targets/dispatcher.js';
import type { FireMessage, ServerMessage } from '../../src/targets/topic/protocol.js';
import { TopicHub, type TopicHubOptions } from '../../src/targets/topic/topicHub.js';
import { topicRoutes } from '../../src/targets/topic/topicRoutes.js';
import { sleep, until } from './support/waiting.js';

/** How a raw test consumer answers fires: it speaks the protocol by hand, so tests control every frame. */
type Mode = 'succeed' | 'fail' | 'ack-only' | 'silent';

class RawConsumer {
  readonly received: ServerMessage[] = [];
  closeCode: number | undefined;

  constructor(
    readonly socket: WebSocket,
    public mode: Mode,
  ) {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as ServerMessage;
      this.received.push(message);
      if (message.type !== 'fire' || this.mode === 'silent') return;
      this.send({ type: 'ack', deliveryId: message.deliveryId });
      if (this.mode === 'succeed') this.outcome(message, 'succeeded');
      if (this.mode === 'fail') this.outcome(message, 'failed', 'boom');
    });
    socket.on('close', (code) => {
      this.closeCode = code;
    });
  }

  get fires(): FireMessage[] {
    return this.received.filter((m): m is FireMessage => m.type === 'fire');
  }

  of<T extends ServerMessage['type']>(type: T): Extract<ServerMessage, { type: T }>[] {
    return this.received.filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type);
  }

  send(message: object): void {
    this.socket.send(JSON.stringify({ v: 1, ...message }));
  }

  outcome(fire: FireMessage, status: 'succeeded' | 'failed', message?: string): void {
    this.send({ type: 'outcome', deliveryId: fire.deliveryId, status, ...(message ? { message } : {}) });
  }
}

const fireOf = (topic: string, overrides: Partial<FireDelivery> = {}): FireDelivery => {
  const now = new Date().toISOString();
  return {
    taskId: 'report-daily',
    fireId: randomUUID(),
    attempt: 1,
    trigger: 'schedule',
    scheduledAt: now,
    firedAt: now,
    deadline: Date.now() + 30_000,
    payload: { hello: 'world' },
    target: { topic },
    node: 'node-1',
    ...overrides,
  };
};

describe('TopicHub over WebSocket', () => {
  let app: FastifyInstance;
  let hub: TopicHub;
  let outcomes: FireOutcome[];
  let endpoint: string;
  const consumers: RawConsumer[] = [];

  const start = async (options: Partial<TopicHubOptions> = {}): Promise<void> => {
    outcomes = [];
    hub = new TopicHub((outcome) => outcomes.push(outcome), { node: 'node-1', ...options });
    app = Fastify();
    await app.register(fastifyWebsocket);
    await app.register(topicRoutes(hub));
    await app.listen({ host: '127.0.0.1', port: 0 });
    endpoint = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/subscribe`;
  };

  const connect = async (group: string, consumer: string, mode: Mode, topics = 'reports'): Promise<RawConsumer> => {
    const raw = new RawConsumer(new WebSocket(`${endpoint}?${new URLSearchParams({ group, topics, consumer })}`), mode);
    consumers.push(raw);
    await until(() => raw.of('welcome').length > 0, `welcome of ${consumer}`);
    return raw;
  };

  afterEach(async () => {
    for (const c of consumers.splice(0)) c.socket.terminate();
    await hub.close();
    await app.close();
  });

  it('hands each fire to exactly one consumer per group, spread over the group', async () => {
    await start();
    const [a1, a2, b1] = [
      await connect('A', 'a1', 'succeed'),
      await connect('A', 'a2', 'succeed'),
      await connect('B', 'b1', 'succeed'),
    ];
    expect(hub.stats().consumersByGroup).toEqual({ A: 2, B: 1 });
    expect(
      hub
        .consumers()
        .map((c) => c.consumerId)
        .sort(),
    ).toEqual(['a1', 'a2', 'b1']);

    const fires = Array.from({ length: 100 }, () => fireOf('reports'));
    for (const fire of fires) hub.deliver(fire);
    await until(() => outcomes.length === 100, '100 outcomes');

    const groupA = [...a1!.fires, ...a2!.fires].map((f) => f.fireId);
    expect(new Set(groupA).size).toBe(100);
    expect(groupA).toHaveLength(100);
    expect(a1!.fires.length).toBeGreaterThan(20);
    expect(a2!.fires.length).toBeGreaterThan(20);
    expect(new Set(b1!.fires.map((f) => f.fireId)).size).toBe(100);
    expect(b1!.fires).toHaveLength(100);
    expect(new Set(outcomes.map((o) => o.fireId))).toEqual(new Set(fires.map((f) => f.fireId)));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('succeeded');
      expect(outcome.details.map((d) => d.group)).toEqual(['A', 'B']);
    }
    expect(b1!.fires[0]).toMatchObject({
      taskId: 'report-daily',
      topic: 'reports',
      attempt: 1,
      payload: { hello: 'world' },
    });
    expect(hub.stats()).toMatchObject({ pending: 0, inFlight: 0, redeliveries: 0 });
  });

  it('redelivers to another consumer of the group when the holder disconnects mid-handling, reporting once', async () => {
    await start();
    const [a1, a2] = [await connect('A', 'a1', 'ack-only'), await connect('A', 'a2', 'ack-only')];
    const fire = fireOf('reports');
    hub.deliver(fire);
    await until(() => a1!.fires.length + a2!.fires.length === 1, 'first delivery');
    const [holder, other] = a1!.fires.length === 1 ? [a1!, a2!] : [a2!, a1!];
    expect(hub.stats().inFlight).toBe(1);

    holder.socket.terminate();
    await until(() => other.fires.length === 1, 'redelivery to the other consumer');
    expect(other.fires[0]!.fireId).toBe(fire.fireId);
    other.outcome(other.fires[0]!, 'succeeded');
    other.outcome(other.fires[0]!, 'succeeded');
    await until(() => outcomes.length === 1, 'the outcome');
    await sleep(100);

    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]!.details).toEqual([{ group: 'A', consumer: other === a1 ? 'a1' : 'a2', status: 'succeeded' }]);
    expect(hub.stats()).toMatchObject({ consumersByGroup: { A: 1 }, redeliveries: 1, inFlight: 0 });
  });

  it('redelivers a fire nobody acked within ackTimeout, to another consumer or again to a lone one', async () => {
    await start({ ackTimeout: 200 });
    const silent = await connect('A', 'silent', 'silent');
    const fire = fireOf('reports');
    hub.deliver(fire);
    await until(() => silent.fires.length === 1, 'delivery to the silent consumer');
    // Alone in its group, the silent consumer gets it again (same delivery id) when the ack is late.
    await until(() => silent.fires.length === 2, 'second delivery to the lone consumer');
    expect(silent.fires[1]!.deliveryId).toBe(silent.fires[0]!.deliveryId);

    const helper = await connect('A', 'helper', 'succeed');
    await until(() => outcomes.length === 1, 'outcome from the helper');
    expect(helper.fires[0]!.fireId).toBe(fire.fireId);
    expect(outcomes[0]!.details[0]!.consumer).toBe('helper');
    // The slow consumer's late outcome is ignored, and it was told the delivery is settled.
    silent.outcome(silent.fires[0]!, 'failed', 'late');
    await until(() => silent.of('cancel').length === 1, 'cancel to the slow consumer');
    await sleep(50);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]!.status).toBe('succeeded');
    expect(hub.stats().redeliveries).toBeGreaterThanOrEqual(2);
  });

  it('does not redeliver an acked fire when a busy event loop made its ack timer late', async () => {
    await start({ ackTimeout: 100 });
    // A consumer in another process, so it acks while this one is busy.
    const script = `
      const ws = new (require('ws'))(process.argv[1]);
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString());
        if (m.type === 'welcome') console.log('ready');
        if (m.type === 'fire') { ws.send(JSON.stringify({ v: 1, type: 'ack', deliveryId: m.deliveryId })); console.log('fire'); }
      });`;
    const url = `${endpoint}?${new URLSearchParams({ group: 'A', topics: 'reports', consumer: 'remote' })}`;
    const child = spawn(process.execPath, ['-e', script, url], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await until(() => out.includes('ready'), 'the remote consumer');
      // Delivered, then the event loop busy past the ack timeout, in its check phase: the timers run
      // next, before the ack that arrived meanwhile is read from the socket.
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          hub.deliver(fireOf('reports'));
          const busyUntil = Date.now() + 300;
          while (Date.now() < busyUntil);
          resolve();
        }),
      );
      await sleep(200);
      expect(out.match(/fire/g)).toHaveLength(1);
      expect(hub.stats()).toMatchObject({ redeliveries: 0, inFlight: 1 });
    } finally {
      child.kill();
    }
  });

  it('reports a failed outcome naming the failing group, with per-group details', async () => {
    await start();
    await connect('billing', 'bill-1', 'succeed');
    await connect('audit', 'audit-1', 'fail');
    const fire = fireOf('reports', { attempt: 2 });
    hub.deliver(fire);
    await until(() => outcomes.length === 1, 'the outcome');

    expect(outcomes[0]).toMatchObject({ taskId: 'report-daily', fireId: fire.fireId, attempt: 2, status: 'failed' });
    expect(outcomes[0]!.message).toBe('group audit failed: boom');
    expect(outcomes[0]!.details).toEqual([
      { group: 'audit', consumer: 'audit-1', status: 'failed', message: 'boom' },
      { group: 'billing', consumer: 'bill-1', status: 'succeeded' },
    ]);
  });

  it('on cancel drops the attempt, tells the holder, and reports nothing', async () => {
    await start();
    const a1 = await connect('A', 'a1', 'ack-only');
    const fire = fireOf('reports');
    hub.deliver(fire);
    await until(() => a1.fires.length === 1, 'delivery');
    hub.cancel(fire.fireId, fire.attempt);
    await until(() => a1.of('cancel').length === 1, 'cancel message');
    expect(a1.of('cancel')[0]!.deliveryId).toBe(a1.fires[0]!.deliveryId);

    a1.outcome(a1.fires[0]!, 'succeeded');
    await sleep(100);
    expect(outcomes).toHaveLength(0);
    expect(hub.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it('holds a fire until a consumer of its topic connects', async () => {
    await start();
    const fire = fireOf('reports');
    hub.deliver(fire);
    expect(hub.stats().pending).toBe(1);
    await connect('other-topic', 'x1', 'succeed', 'invoices');
    await sleep(50);
    expect(outcomes).toHaveLength(0);

    const a1 = await connect('A', 'a1', 'succeed');
    await until(() => outcomes.length === 1, 'the outcome');
    expect(a1.fires[0]!.fireId).toBe(fire.fireId);
    expect(outcomes[0]!.details.map((d) => d.group)).toEqual(['A']);
    expect(hub.stats().pending).toBe(0);
  });

  it('waits for a group that is reconnecting within groupGrace', async () => {
    await start({ groupGrace: 10_000 });
    const a1 = await connect('A', 'a1', 'succeed');
    await connect('B', 'b1', 'succeed');
    a1.socket.terminate();
    await until(() => hub.stats().consumersByGroup.A === undefined, 'A to leave');

    const fire = fireOf('reports');
    hub.deliver(fire);
    await sleep(100);
    expect(outcomes).toHaveLength(0);
    expect(hub.stats().pending).toBe(1);

    await connect('A', 'a1-again', 'succeed');
    await until(() => outcomes.length === 1, 'the outcome');
    expect(outcomes[0]!.details.map((d) => `${d.group}/${d.consumer}`)).toEqual(['A/a1-again', 'B/b1']);
  });

  it('stops delivering at the deadline without reporting', async () => {
    await start();
    hub.deliver(fireOf('reports', { deadline: Date.now() + 100 }));
    await sleep(200);
    expect(hub.stats().pending).toBe(0);
    const late = await connect('A', 'late', 'succeed');
    await sleep(50);
    expect(late.fires).toHaveLength(0);
    expect(outcomes).toHaveLength(0);
  });

  it('answers a bad message with an error naming the field and keeps the connection', async () => {
    await start();
    const a1 = await connect('A', 'a1', 'succeed');
    a1.send({ type: 'outcome', deliveryId: 'd-1', status: 'done' });
    a1.socket.send('not json');
    a1.socket.send(JSON.stringify({ v: 1, type: 'ack' }));
    await until(() => a1.of('error').length === 3, 'three errors');
    expect(a1.of('error').map((e) => [e.code, e.field])).toEqual([
      ['bad_message', 'status'],
      ['bad_json', undefined],
      ['bad_message', 'deliveryId'],
    ]);
    expect(a1.of('error')[0]!.message).toContain('status');

    hub.deliver(fireOf('reports'));
    await until(() => outcomes.length === 1, 'an outcome over the same connection');
  });

  it('refuses a bad subscription with an error naming the field and close code 4400', async () => {
    await start();
    const raw = new RawConsumer(new WebSocket(`${endpoint}?group=A&consumer=c1&topics=ok,bad%20topic`), 'succeed');
    await until(() => raw.closeCode !== undefined, 'close');
    expect(raw.closeCode).toBe(4400);
    expect(raw.of('error')[0]).toMatchObject({ code: 'bad_subscription', field: 'topics[1]' });
    expect(hub.consumers()).toHaveLength(0);
  });

  it('terminates a consumer that stops answering pings and hands its work to another', async () => {
    await start({ heartbeatInterval: 100 });
    // autoPong off: the socket stays open but the peer looks dead, like a machine cut off the network.
    const mute = new RawConsumer(
      new WebSocket(`${endpoint}?${new URLSearchParams({ group: 'A', topics: 'reports', consumer: 'mute' })}`, {
        autoPong: false,
      }),
      'ack-only',
    );
    consumers.push(mute);
    await until(() => mute.of('welcome').length > 0, 'welcome');
    hub.deliver(fireOf('reports'));
    await until(() => mute.fires.length === 1, 'delivery to the mute consumer');

    const alive = await connect('A', 'alive', 'succeed');
    await until(() => outcomes.length === 1, 'the outcome from the live consumer', 2_000);
    expect(mute.closeCode).toBe(1006);
    expect(alive.fires).toHaveLength(1);
    expect(outcomes[0]!.details[0]!.consumer).toBe('alive');
  });

  it('lets a reconnecting consumer replace its stale connection and take over its work', async () => {
    await start();
    const stale = await connect('A', 'a1', 'ack-only');
    const fire = fireOf('reports');
    hub.deliver(fire);
    await until(() => stale.fires.length === 1, 'delivery');

    const fresh = await connect('A', 'a1', 'succeed');
    await until(() => outcomes.length === 1, 'the outcome');
    expect(stale.closeCode).toBe(4409);
    expect(fresh.fires[0]!.deliveryId).toBe(stale.fires[0]!.deliveryId);
    expect(hub.consumers()).toHaveLength(1);
  });
});
