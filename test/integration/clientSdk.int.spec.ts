import type { AddressInfo } from 'node:net';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { subscribe, type ReceivedFire, type StateChange, type Subscription } from '../../src/client/index.js';
import { isValidationError } from '../../domain/errors/index.js';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import type { FireDelivery, FireOutcome } from '../../src/targets/dispatcher.js';
import { TopicHub, type TopicHubOptions } from '../../src/targets/topic/topicHub.js';
import { topicRoutes } from '../../src/targets/topic/topicRoutes.js';
import { exportFireOf } from './support/fires.js';
import { sleep, until } from './support/waiting.js';

const fireOf = (payload: unknown, overrides: Partial<FireDelivery> = {}): FireDelivery =>
  exportFireOf({ payload, ...overrides });

type Node = { app: FastifyInstance; hub: TopicHub; outcomes: FireOutcome[]; url: string };

describe('subscriber SDK against a hub in Fastify', () => {
  const nodes: Node[] = [];
  const subscriptions: Subscription[] = [];

  const startNode = async (options: Partial<TopicHubOptions> = {}): Promise<Node> => {
    const outcomes: FireOutcome[] = [];
    const hub = new TopicHub((outcome) => outcomes.push(outcome), { node: `node-${nodes.length + 1}`, ...options });
    const app = Fastify();
    await app.register(fastifyWebsocket);
    await app.register(topicRoutes(hub));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const node = { app, hub, outcomes, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
    nodes.push(node);
    return node;
  };

  const track = (subscription: Subscription): Subscription => {
    subscriptions.push(subscription);
    return subscription;
  };

  afterEach(async () => {
    await Promise.all(subscriptions.splice(0).map((s) => s.close()));
    for (const { hub, app } of nodes.splice(0)) {
      await hub.close();
      await app.close();
    }
  });

  it('reports handler success and failure, acking on receipt', async () => {
    const node = await startNode({ ackTimeout: 300 });
    const seen: ReceivedFire[] = [];
    const subscription = track(
      subscribe({ url: node.url, group: 'exporter', topics: ['exports'], consumerId: 'exp-1' }, async (fire) => {
        seen.push(fire);
        // Longer than ackTimeout: only the ack on receipt keeps the hub from redelivering.
        await sleep(600);
        if ((fire.payload as { fail?: boolean }).fail) throw new Error('disk full');
      }),
    );
    await subscription.ready;
    expect(subscription.state).toBe('open');

    const ok = fireOf({ fail: false });
    const bad = fireOf({ fail: true });
    node.hub.deliver(ok);
    node.hub.deliver(bad);
    await until(() => node.outcomes.length === 2, 'two outcomes');

    const byFire = new Map(node.outcomes.map((o) => [o.fireId, o]));
    expect(byFire.get(ok.fireId)).toMatchObject({
      status: 'succeeded',
      details: [{ group: 'exporter', consumer: 'exp-1' }],
    });
    expect(byFire.get(bad.fireId)).toMatchObject({ status: 'failed', message: 'group exporter failed: disk full' });
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({
      fireId: ok.fireId,
      attempt: 1,
      taskId: 'nightly-export',
      taskName: 'Nightly export',
      topic: 'exports',
      trigger: 'schedule',
      scheduledAt: ok.scheduledAt,
      deadline: ok.deadline,
      payload: { fail: false },
    });
    expect(node.hub.stats().redeliveries).toBe(0);
  });

  it('reconnects after the server drops the connection and finishes the fire it was handling', async () => {
    const node = await startNode();
    const states: StateChange['state'][] = [];
    let calls = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const subscription = track(
      subscribe(
        {
          url: node.url,
          group: 'exporter',
          topics: ['exports'],
          reconnect: { initialDelay: 20, maxDelay: 100 },
          onStateChange: (change) => states.push(change.state),
        },
        async () => {
          calls++;
          await released;
        },
      ),
    );
    await subscription.ready;
    node.hub.deliver(fireOf({}));
    await until(() => calls === 1, 'the handler to start');

    for (const socket of node.app.websocketServer.clients) socket.terminate();
    await until(() => states.filter((s) => s === 'open').length === 2, 'the second welcome');
    expect(states).toEqual(['open', 'reconnecting', 'open']);
    // The hub redelivered the unfinished fire on reconnect; the SDK joins it to the running handler.
    await until(() => node.hub.stats().redeliveries === 1, 'the redelivery');
    release();
    await until(() => node.outcomes.length === 1, 'the outcome');
    await sleep(50);

    expect(calls).toBe(1);
    expect(node.outcomes).toHaveLength(1);
    expect(node.outcomes[0]!.status).toBe('succeeded');
  });

  it('drops and replaces a link on which the hub has gone silent', async () => {
    // A hub whose clock never moves never pings: to the SDK it looks like a node cut off the network.
    const node = await startNode({ heartbeatInterval: 100, clock: new SimulatedClock() });
    const states: StateChange['state'][] = [];
    const subscription = track(
      subscribe(
        {
          url: node.url,
          group: 'exporter',
          topics: ['exports'],
          reconnect: { initialDelay: 20, maxDelay: 100 },
          onStateChange: (change) => states.push(change.state),
        },
        () => {},
      ),
    );
    await subscription.ready;
    await until(() => states.filter((s) => s === 'open').length === 2, 'a reconnect');
    expect(states.slice(0, 3)).toEqual(['open', 'reconnecting', 'open']);
  });

  it('answers a redelivered fire it already finished with the remembered outcome, without running it again', async () => {
    const node = await startNode();
    const calls = new Map<string, number>();
    const subscription = track(
      subscribe({ url: node.url, group: 'exporter', topics: ['exports'] }, (fire) => {
        calls.set(fire.fireId, (calls.get(fire.fireId) ?? 0) + 1);
        if (fire.payload === 'fail') throw new Error('rejected');
      }),
    );
    await subscription.ready;

    const ok = fireOf('ok');
    const bad = fireOf('fail');
    node.hub.deliver(ok);
    node.hub.deliver(bad);
    await until(() => node.outcomes.length === 2, 'first outcomes');
    // A new owner redelivers the same attempts after a crash; a new attempt is new work.
    node.hub.deliver(ok);
    node.hub.deliver(bad);
    node.hub.deliver({ ...ok, attempt: 2 });
    await until(() => node.outcomes.length === 5, 'outcomes of the redeliveries');

    expect(calls.get(ok.fireId)).toBe(2);
    expect(calls.get(bad.fireId)).toBe(1);
    const of = (fireId: string, attempt: number) =>
      node.outcomes.filter((o) => o.fireId === fireId && o.attempt === attempt).map((o) => [o.status, o.message]);
    expect(of(ok.fireId, 1)).toEqual([
      ['succeeded', undefined],
      ['succeeded', undefined],
    ]);
    expect(of(bad.fireId, 1)).toEqual([
      ['failed', 'group exporter failed: rejected'],
      ['failed', 'group exporter failed: rejected'],
    ]);
    expect(of(ok.fireId, 2)).toEqual([['succeeded', undefined]]);
  });

  it('aborts the handler when the hub cancels the attempt, and reports nothing', async () => {
    const node = await startNode();
    let signal: AbortSignal | undefined;
    const subscription = track(
      subscribe({ url: node.url, group: 'exporter', topics: ['exports'] }, async (fire) => {
        signal = fire.signal;
        await new Promise((_resolve, reject) =>
          fire.signal.addEventListener('abort', () => reject(fire.signal.reason)),
        );
      }),
    );
    await subscription.ready;
    const fire = fireOf({});
    node.hub.deliver(fire);
    await until(() => signal !== undefined, 'the handler to start');

    node.hub.cancel(fire.fireId, fire.attempt);
    await until(() => signal!.aborted, 'the abort');
    await sleep(50);
    expect(node.outcomes).toHaveLength(0);
  });

  it('consumes from every node it is given', async () => {
    const [one, two] = [await startNode(), await startNode()];
    const handled: string[] = [];
    const subscription = track(
      subscribe(
        { url: [one!.url, `${two!.url.replace('http', 'ws')}/api/subscribe`], group: 'g', topics: ['exports'] },
        (fire) => {
          handled.push(fire.fireId);
        },
      ),
    );
    await subscription.ready;
    await until(() => one!.hub.consumers().length === 1 && two!.hub.consumers().length === 1, 'both connections');
    one!.hub.deliver(fireOf(1));
    two!.hub.deliver(fireOf(2));
    await until(() => one!.outcomes.length === 1 && two!.outcomes.length === 1, 'an outcome on each node');
    expect(handled).toHaveLength(2);
  });

  it('refuses bad options naming the field, and close() settles a subscription that never connected', async () => {
    expect(() => subscribe({ url: 'http://127.0.0.1:1', group: 'bad group', topics: ['t'] }, () => {})).toThrow(
      /group/,
    );
    try {
      subscribe({ url: 'ftp://x', group: 'g', topics: ['t'] }, () => {});
      expect.unreachable();
    } catch (error) {
      expect(isValidationError(error) && error.issues[0]!.path).toBe('url');
    }

    const subscription = subscribe(
      { url: 'http://127.0.0.1:1', group: 'g', topics: ['t'], reconnect: { initialDelay: 10, maxDelay: 20 } },
      () => {},
    );
    await sleep(50);
    expect(subscription.state).toBe('reconnecting');
    await subscription.close();
    expect(subscription.state).toBe('closed');
    await expect(subscription.ready).rejects.toThrow(/closed before it connected/);
  });
});
