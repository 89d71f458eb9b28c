import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import { BehaviorSubject } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assignSlots, slotOf } from '../../domain/cluster/index.js';
import { isIllegalStateError } from '../../domain/errors/index.js';
import { TaskSpec } from '../../domain/task/spec.js';
import { startKairos, type RunningKairos } from '../../src/app/startKairos.js';
import { subscribe, type FireHandler, type Subscription } from '../../src/client/index.js';
import { compileConfig } from '../../src/config/config.js';
import type { ClusterMember } from '../../src/coordination/coordinator.js';
import type { EventStore, RecordedEvent } from '../../src/store/eventStore.js';
import type { FireOutcome } from '../../src/targets/dispatcher.js';
import { ConsumerRelay } from '../../src/targets/topic/consumerRelay.js';
import { TopicHub } from '../../src/targets/topic/topicHub.js';
import { topicRoutes } from '../../src/targets/topic/topicRoutes.js';
import { verifyStore } from '../../src/verify/verifyStore.js';
import { sleep, until, waitUntil } from './support/waiting.js';
import { useZkEnsemble } from './support/zkEnsemble.js';

type Detail = { group: string; consumer: string; status: string; message?: string };
type Outcome = { type: string; data: { fireId: string; message?: string; details: Detail[] } };
type Handled = { consumer: string; fireId: string; attempt: number };

/** Cluster waits (members, leases, relays) on a loaded 2-core machine: generous, never a sleep-and-hope. */
const SLOW = 30_000;

/**
 * Three nodes on one ZooKeeper ensemble and one shared log. Consumers connect to one node only and
 * still get the fires of tasks another node holds, through that node's consumer relay: once per group
 * per attempt, with the outcome recorded by the owner, and redelivered when the consumer or its node
 * goes away.
 */
describe('topic subscribers across the cluster (consumer relay)', () => {
  const zk = useZkEnsemble();
  const dir = mkdtempSync(join(tmpdir(), 'kairos-relay-'));
  const nodes = new Map<string, RunningKairos>();
  const subscriptions: Subscription[] = [];
  const taskIds: string[] = [];

  const start = async (nodeId: string): Promise<RunningKairos> => {
    const node = await startKairos(
      compileConfig({
        flags: {
          port: 0,
          host: '127.0.0.1',
          nodeId,
          dataDir: join(dir, nodeId),
          store: `sqlite:${join(dir, 'shared.db')}`,
          logLevel: 'silent',
          zk: `${zk.ensemble.connectionString}/kairos/relay`,
          zkSessionTimeout: '2s',
          // Redelivery after an ack timeout would blur "once per group": these tests redeliver only on purpose.
          subscribers: { ackTimeout: '30s' },
        },
      }),
    );
    nodes.set(nodeId, node);
    return node;
  };
  const node = (id: string): RunningKairos => nodes.get(id)!;

  beforeAll(async () => {
    for (const id of ['node-a', 'node-b', 'node-c']) await start(id);
    await until(
      () => [...nodes.values()].every((n) => n.node.cluster()?.members.length === 3),
      'every node to see three members',
      SLOW,
    );
  });

  afterAll(async () => {
    await Promise.all(subscriptions.map((s) => s.close()));
    for (const n of nodes.values()) await n.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const consumer = (url: string, group: string, consumerId: string, topic: string, handler: FireHandler) => {
    const subscription = subscribe(
      { url, group, topics: [topic], consumerId, reconnect: { initialDelay: 50, maxDelay: 500 } },
      handler,
    );
    subscriptions.push(subscription);
    return subscription;
  };

  const consumerIds = (n: RunningKairos, relayedBy?: string): string[] =>
    n.hub
      .consumers()
      .filter((c) => c.relayedBy === relayedBy)
      .map((c) => c.consumerId)
      .sort();

  /** Task ids that `owner` holds by the cluster's slot division. */
  const heldBy = (owner: string, prefix: string, count: number): string[] => {
    const view = node(owner).node.cluster()!;
    const owners = assignSlots(view.slotCount!, view.members);
    const ids: string[] = [];
    for (let i = 0; ids.length < count; i++) {
      if (owners[slotOf(`${prefix}-${i}`, view.slotCount!)] === owner) ids.push(`${prefix}-${i}`);
    }
    return ids;
  };

  /** Creates a task that never fires by itself, and fires it once on its owner (leases may still be moving). */
  const fireOn = async (owner: RunningKairos, taskId: string, topic: string, payload: unknown): Promise<string> => {
    const spec = TaskSpec.parse({ id: taskId, schedule: { at: '2999-01-01T00:00:00Z' }, target: { topic }, payload });
    await owner.node.createTask(spec, { actor: 'user:test' });
    taskIds.push(taskId);
    const deadline = Date.now() + SLOW;
    for (;;) {
      try {
        return await owner.node.triggerTask(taskId, { actor: 'user:test' });
      } catch (err) {
        if (!isIllegalStateError(err) || Date.now() > deadline) throw err;
        await sleep(100);
      }
    }
  };

  const outcomeOf = async (store: EventStore, fireId: string): Promise<Outcome> => {
    let found: RecordedEvent | undefined;
    await waitUntil(
      async () => {
        found = (await store.readAll({ maxCount: 100_000 })).find(
          (e) =>
            (e.type === 'TaskSucceeded' || e.type === 'TaskFailed') && (e.data as { fireId: string }).fireId === fireId,
        );
        return found !== undefined;
      },
      `the outcome of ${fireId}`,
      SLOW,
    );
    return { type: found!.type, data: found!.data as Outcome['data'] };
  };

  const firedBy = async (store: EventStore, fireId: string): Promise<string | undefined> =>
    (await store.readAll({ maxCount: 100_000 }))
      .filter((e) => e.type === 'TaskFired')
      .map((e) => e.data as { fireId: string; node: string })
      .find((f) => f.fireId === fireId)?.node;

  /** Blocks until the hub withdraws the fire or the subscription closes. */
  const untilAborted = (signal: AbortSignal): Promise<never> =>
    new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));

  it('brings a fire of a task held by node-b to consumers on node-a only, once per group, and records their outcome', async () => {
    const [a, b, c] = [node('node-a'), node('node-b'), node('node-c')];
    const topic = 'relay.invoices';
    const handled: Handled[] = [];
    const on = (group: string, consumerId: string) =>
      consumer(a.url, group, consumerId, topic, (fire) => {
        handled.push({ consumer: consumerId, fireId: fire.fireId, attempt: fire.attempt });
        if (group === 'billing' && (fire.payload as { fail: boolean }).fail) throw new Error('ledger locked');
      });
    await Promise.all(
      [on('billing', 'billing-1'), on('billing', 'billing-2'), on('audit', 'audit-1')].map((s) => s.ready),
    );
    const relayed = ['audit-1@node-a', 'billing-1@node-a', 'billing-2@node-a'];
    await until(
      () => [b, c].every((n) => consumerIds(n, 'node-a').join() === relayed.join()),
      'node-a to relay its consumers to node-b and node-c',
      SLOW,
    );

    const fireIds: string[] = [];
    for (const [i, taskId] of heldBy('node-b', 'invoices', 4).entries()) {
      fireIds.push(await fireOn(b, taskId, topic, { fail: i === 0 }));
    }
    const outcomes = await Promise.all(fireIds.map((fireId) => outcomeOf(b.store, fireId)));

    for (const fireId of fireIds) {
      expect(await firedBy(b.store, fireId)).toBe('node-b');
      const got = handled.filter((h) => h.fireId === fireId).map((h) => h.consumer);
      // Each group exactly once: node-b's hub chose one of node-a's billing consumers, as for its own.
      expect(got.filter((id) => id === 'audit-1')).toHaveLength(1);
      expect(got.filter((id) => id.startsWith('billing-'))).toHaveLength(1);
    }
    // The two consumers of one group share the work.
    expect(new Set(handled.map((h) => h.consumer))).toEqual(new Set(['audit-1', 'billing-1', 'billing-2']));

    const [failed, ...succeeded] = outcomes;
    expect(failed).toMatchObject({
      type: 'TaskFailed',
      data: {
        message: 'group billing failed: ledger locked',
        details: [
          { group: 'audit', consumer: 'audit-1@node-a', status: 'succeeded' },
          {
            group: 'billing',
            consumer: expect.stringMatching(/^billing-[12]@node-a$/),
            status: 'failed',
            message: 'ledger locked',
          },
        ],
      },
    });
    for (const outcome of succeeded) {
      expect(outcome.type).toBe('TaskSucceeded');
      expect(
        outcome.data.details.map((d) => [d.group, d.consumer.replace(/^billing-[12]@/, 'billing-?@'), d.status]),
      ).toEqual([
        ['audit', 'audit-1@node-a', 'succeeded'],
        ['billing', 'billing-?@node-a', 'succeeded'],
      ]);
    }

    // No loops: node-a serves its own consumers directly and relays none of the relayed ones back.
    expect(consumerIds(a)).toEqual(['audit-1', 'billing-1', 'billing-2']);
    for (const n of [a, b, c]) {
      expect(
        n.hub.consumers().filter((x) => x.relayedBy === n.node.nodeId || x.consumerId.split('@').length > 2),
      ).toEqual([]);
    }
    expect(b.hub.stats().redeliveries).toBe(0);
  });

  it('redelivers to another consumer of the group when the consumer holding a relayed fire disconnects', async () => {
    const [a, b] = [node('node-a'), node('node-b')];
    const topic = 'relay.shipping';
    const handled: Handled[] = [];
    const first = consumer(a.url, 'ship', 'ship-1', topic, async (fire) => {
      handled.push({ consumer: 'ship-1', fireId: fire.fireId, attempt: fire.attempt });
      await untilAborted(fire.signal);
    });
    await first.ready;
    await until(() => consumerIds(b, 'node-a').includes('ship-1@node-a'), 'the relay of ship-1 to node-b', SLOW);

    const [taskId] = heldBy('node-b', 'shipping', 1);
    const fireId = await fireOn(b, taskId!, topic, {});
    await until(() => handled.length === 1, 'ship-1 to get the fire', SLOW);

    // Connected only now, so that node-b's hub could not have chosen it for the first delivery.
    const second = consumer(a.url, 'ship', 'ship-2', topic, (fire) => {
      handled.push({ consumer: 'ship-2', fireId: fire.fireId, attempt: fire.attempt });
    });
    await second.ready;
    await until(() => consumerIds(b, 'node-a').includes('ship-2@node-a'), 'the relay of ship-2 to node-b', SLOW);
    const redeliveries = b.hub.stats().redeliveries;
    await first.close();

    const outcome = await outcomeOf(b.store, fireId);
    expect(outcome).toMatchObject({
      type: 'TaskSucceeded',
      data: { details: [{ group: 'ship', consumer: 'ship-2@node-a', status: 'succeeded' }] },
    });
    expect(handled).toEqual([
      { consumer: 'ship-1', fireId, attempt: 1 },
      { consumer: 'ship-2', fireId, attempt: 1 },
    ]);
    expect(b.hub.stats().redeliveries).toBe(redeliveries + 1);
    // The consumer's relays closed with it.
    await until(
      () => [...nodes.values()].every((n) => !consumerIds(n, 'node-a').includes('ship-1@node-a')),
      'ship-1 gone',
      SLOW,
    );
  });

  it('redelivers when the node a consumer is connected to stops, and the log verifies clean', async () => {
    const [a, b, c] = [node('node-a'), node('node-b'), node('node-c')];
    const topic = 'relay.ledger';
    const handled: Handled[] = [];
    const onC = consumer(c.url, 'ledger', 'ledger-1', topic, async (fire) => {
      handled.push({ consumer: 'ledger-1', fireId: fire.fireId, attempt: fire.attempt });
      await untilAborted(fire.signal);
    });
    await onC.ready;
    await until(() => consumerIds(b, 'node-c').includes('ledger-1@node-c'), 'the relay of ledger-1 to node-b', SLOW);

    const [taskId] = heldBy('node-b', 'ledger', 1);
    const fireId = await fireOn(b, taskId!, topic, {});
    await until(() => handled.length === 1, 'ledger-1 to get the fire', SLOW);

    const onA = consumer(a.url, 'ledger', 'ledger-2', topic, (fire) => {
      handled.push({ consumer: 'ledger-2', fireId: fire.fireId, attempt: fire.attempt });
    });
    await onA.ready;
    await until(() => consumerIds(b, 'node-a').includes('ledger-2@node-a'), 'the relay of ledger-2 to node-b', SLOW);

    await c.close();
    nodes.delete('node-c');
    const outcome = await outcomeOf(b.store, fireId);
    expect(outcome).toMatchObject({
      type: 'TaskSucceeded',
      data: { details: [{ group: 'ledger', consumer: 'ledger-2@node-a', status: 'succeeded' }] },
    });
    expect(handled.map((h) => h.consumer)).toEqual(['ledger-1', 'ledger-2']);

    // What is left: each direct consumer relayed exactly once to each other live member, nothing else.
    await until(
      () =>
        [...nodes.values()].every((n) => {
          const expected = [...nodes.values()]
            .filter((m) => m !== n)
            .flatMap((m) => consumerIds(m).map((id) => `${id}@${m.node.nodeId}`))
            .sort();
          return (
            n.hub
              .consumers()
              .filter((x) => x.relayedBy !== undefined)
              .map((x) => x.consumerId)
              .sort()
              .join() === expected.join()
          );
        }),
      'one relay per consumer per peer',
      SLOW,
    );

    const report = await verifyStore(a.store);
    expect(report.violations).toEqual([]);
    expect(report.tasks).toBe(taskIds.length);
  });
});

/** One relaying node and one peer, each a hub in Fastify; the membership is a subject the test drives. */
describe('the consumer relay following the membership', () => {
  type Hub = { app: FastifyInstance; hub: TopicHub; outcomes: FireOutcome[]; url: string };
  const apps: Hub[] = [];
  const closers: Array<() => Promise<void>> = [];
  const silent = { warn: () => {}, debug: () => {} };

  const startHub = async (nodeId: string): Promise<Hub> => {
    const outcomes: FireOutcome[] = [];
    const hub = new TopicHub((outcome) => outcomes.push(outcome), { node: nodeId, logger: silent });
    const app = Fastify();
    await app.register(fastifyWebsocket);
    await app.register(topicRoutes(hub));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const started = { app, hub, outcomes, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
    apps.push(started);
    return started;
  };
  const member = (id: string, address: string): ClusterMember => ({ id, address, weight: 1, labels: {} });
  const ids = (hub: TopicHub) =>
    hub.consumers().map((c) => `${c.consumerId}${c.relayedBy ? ` by ${c.relayedBy}` : ''}`);

  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    for (const { hub, app } of apps.splice(0)) {
      await hub.close();
      await app.close();
    }
  });

  it('relays consumers already connected, follows joins, drops and leaves, and closes every upstream', async () => {
    const [a, b] = [await startHub('node-a'), await startHub('node-b')];
    const members$ = new BehaviorSubject<readonly ClusterMember[]>([member('node-b', b.url)]);
    const handled: string[] = [];
    const subscription = subscribe({ url: b.url, group: 'g', topics: ['t'], consumerId: 'x' }, (fire) => {
      handled.push(fire.fireId);
    });
    closers.push(() => subscription.close());
    await subscription.ready;

    // Connected before the relay starts, as consumers do while a node replays its log.
    const relay = new ConsumerRelay({
      nodeId: 'node-b',
      hub: b.hub,
      members$,
      reconnect: { initialDelay: 20, maxDelay: 100 },
      retireAfterMs: 1_000,
      logger: silent,
    });
    closers.push(() => relay.close());
    relay.start();
    expect(ids(a.hub)).toEqual([]);

    members$.next([member('node-b', b.url), member('node-a', a.url)]);
    await until(() => ids(a.hub).join() === 'x@node-b by node-b', 'the relay to the joining peer');
    const fire = {
      taskId: 'task',
      fireId: randomUUID(),
      attempt: 1,
      trigger: 'schedule' as const,
      scheduledAt: new Date().toISOString(),
      firedAt: new Date().toISOString(),
      deadline: Date.now() + 30_000,
      payload: null,
      target: { topic: 't' },
      node: 'node-a',
    };
    a.hub.deliver(fire);
    await until(() => a.outcomes.length === 1, 'the outcome on the peer');
    expect(a.outcomes[0]).toMatchObject({ status: 'succeeded', details: [{ group: 'g', consumer: 'x@node-b' }] });
    expect(handled).toEqual([fire.fireId]);

    // The peer drops the upstream: it comes back while the peer is a member.
    let connections = 0;
    a.app.websocketServer.on('connection', () => connections++);
    for (const socket of a.app.websocketServer.clients) socket.terminate();
    await until(() => connections === 1 && ids(a.hub).join() === 'x@node-b by node-b', 'the upstream to reconnect');

    // The peer leaves (a graceful stop leaves first, then drains): its fires still get their answers
    // for a while, then the upstream closes.
    members$.next([member('node-b', b.url)]);
    const late = { ...fire, fireId: randomUUID() };
    a.hub.deliver(late);
    await until(() => a.outcomes.length === 2, 'the outcome of a fire of the peer that left');
    expect(handled).toEqual([fire.fireId, late.fireId]);
    await until(() => ids(a.hub).length === 0, 'the relay to the leaving peer to close', 5_000);
    members$.next([member('node-b', b.url), member('node-a', a.url)]);
    await until(() => ids(a.hub).length === 1, 'the relay to the returning peer');

    await relay.close();
    await until(() => ids(a.hub).length === 0, 'the peer to see the relay close');
    expect(a.app.websocketServer.clients.size).toBe(0);
    // The direct consumer is untouched, and is not relayed anywhere any more.
    expect(ids(b.hub)).toEqual(['x']);
  });
});
