import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DIRECT_GROUPS_STREAM, firesStreamOf, outcomesStreamOf } from '../../domain/directDelivery/index.js';
import { isValidationError } from '../../domain/errors/index.js';
import { retireDirectGroup, subscribe, type ReceivedFire, type Subscription } from '../../src/client/index.js';
import { systemClock } from '../../src/clock/clock.js';
import { EsdbEventStore } from '../../src/store/esdb/esdbEventStore.js';
import { topicFireFieldsOf, type FireDelivery, type FireOutcome } from '../../src/targets/dispatcher.js';
import { DirectDelivery } from '../../src/targets/direct/directDelivery.js';
import { TopicHub } from '../../src/targets/topic/topicHub.js';
import { startEsdbStandIn, type EsdbStandIn } from '../support/esdbStandIn/index.js';
import { exportFireOf } from './support/fires.js';
import { sleep, until } from './support/waiting.js';

/** The node side of direct mode (hub + direct delivery) on a stand-in, and SDK consumers in this process. */
describe('subscriber SDK in direct mode (EventStoreDB protocol stand-in)', () => {
  let standIn: EsdbStandIn;
  let store: EsdbEventStore;
  let hub: TopicHub;
  let direct: DirectDelivery;
  let outcomes: FireOutcome[];
  const subscriptions: Subscription[] = [];
  const warnings: string[] = [];

  const start = async (): Promise<void> => {
    standIn = await startEsdbStandIn();
    store = EsdbEventStore.open(standIn.url);
    outcomes = [];
    hub = new TopicHub((outcome) => outcomes.push(outcome), { node: 'node-1' });
    direct = new DirectDelivery({
      store,
      hub,
      node: 'node-1',
      clock: systemClock,
      logger: { warn: (_details, message) => warnings.push(message) },
      resubscribeAfterMs: 100,
    });
    await direct.start();
  };

  const consumer = async (
    group: string,
    handler: (fire: ReceivedFire) => Promise<void> | void,
    options: {
      topics?: string[];
      consumerId?: string;
      messageTimeoutMs?: number;
      closeTimeoutMs?: number;
      onError?: (e: Error) => void;
    } = {},
  ): Promise<Subscription> => {
    const subscription = subscribe(
      {
        store: standIn.url,
        group,
        topics: options.topics ?? ['exports'],
        ...(options.consumerId ? { consumerId: options.consumerId } : {}),
        direct: {
          messageTimeoutMs: options.messageTimeoutMs ?? 30_000,
          maxRetryCount: 3,
          closeTimeoutMs: options.closeTimeoutMs ?? 200,
        },
        reconnect: { initialDelay: 50, maxDelay: 500 },
        ...(options.onError ? { onError: options.onError } : {}),
      },
      handler,
    );
    subscriptions.push(subscription);
    await subscription.ready;
    return subscription;
  };

  const groupsKnown = (topic: string, groups: string[]) =>
    until(() => direct.groupsOf(topic).join() === groups.join(), `direct groups ${groups.join()} of ${topic}`);

  afterEach(async () => {
    await Promise.all(subscriptions.splice(0).map((s) => s.close()));
    await direct.close();
    await hub.close();
    await store.close();
    await standIn.stop();
    warnings.length = 0;
  });

  it('gives each fire to one consumer of the group and records the outcome with group and consumer', async () => {
    await start();
    const handled: Record<string, string[]> = { a: [], b: [] };
    await consumer('billing', (fire) => void handled.a!.push(fire.fireId), { consumerId: 'a' });
    await consumer('billing', (fire) => void handled.b!.push(fire.fireId), { consumerId: 'b' });
    await groupsKnown('exports', ['billing']);

    const fires = Array.from({ length: 20 }, () => exportFireOf());
    for (const fire of fires) hub.deliver(fire);
    await until(() => outcomes.length === 20, 'an outcome for every fire');

    const all = [...handled.a!, ...handled.b!];
    expect(all.sort()).toEqual(fires.map((f) => f.fireId).sort());
    // Competing consumers: both took part (round robin), neither handled a fire the other did.
    expect(handled.a!.length).toBeGreaterThan(0);
    expect(handled.b!.length).toBeGreaterThan(0);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('succeeded');
      expect(outcome.details).toEqual([
        { group: 'billing', consumer: handled.a!.includes(outcome.fireId) ? 'a' : 'b', status: 'succeeded' },
      ]);
    }
    // Everything went through the log: fires, outcomes and the declaration.
    expect(await store.readStream(firesStreamOf('exports'))).toHaveLength(20);
    expect(await store.readStream(outcomesStreamOf('exports'))).toHaveLength(20);
    expect((await store.readStream(DIRECT_GROUPS_STREAM)).map((e) => e.type)).toEqual(['DirectGroupDeclared']);
  });

  it('hands the handler the same fields as connected mode, and waits for every group', async () => {
    await start();
    const seen: ReceivedFire[] = [];
    await consumer('billing', (fire) => void seen.push(fire));
    await consumer('audit', () => {
      throw new Error('ledger closed');
    });
    await groupsKnown('exports', ['audit', 'billing']);

    const fire = exportFireOf();
    hub.deliver(fire);
    await until(() => outcomes.length === 1, 'the outcome');
    const { signal, ...fields } = seen[0]!;
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(fields).toEqual({
      fireId: fire.fireId,
      attempt: 1,
      taskId: 'nightly-export',
      taskName: 'Nightly export',
      topic: 'exports',
      scheduledAt: fire.scheduledAt,
      firedAt: fire.firedAt,
      trigger: 'schedule',
      payload: { day: '2026-03-01' },
      deadline: fire.deadline,
    });
    expect(outcomes[0]).toMatchObject({
      status: 'failed',
      message: 'group audit failed: ledger closed',
      details: [
        { group: 'audit', status: 'failed', message: 'ledger closed' },
        { group: 'billing', status: 'succeeded' },
      ],
    });
  });

  it('gives a fire to another consumer when the one handling it goes away, and its outcome counts once', async () => {
    await start();
    let startedOnA!: () => void;
    const aStarted = new Promise<void>((resolve) => (startedOnA = resolve));
    const a = await consumer(
      'billing',
      async (fire) => {
        startedOnA();
        await new Promise((resolve) => fire.signal.addEventListener('abort', resolve));
      },
      { consumerId: 'a' },
    );
    const fire = exportFireOf();
    await groupsKnown('exports', ['billing']);
    hub.deliver(fire);
    await aStarted;

    const onB: string[] = [];
    await consumer('billing', (f) => void onB.push(f.fireId), { consumerId: 'b' });
    await a.close();
    await until(() => outcomes.length === 1, 'the outcome from b');
    expect(onB).toEqual([fire.fireId]);
    expect(outcomes[0]!.details).toEqual([{ group: 'billing', consumer: 'b', status: 'succeeded' }]);
  });

  it('runs a redelivered fire once: a consumer that already handled it answers from memory', async () => {
    await start();
    let runs = 0;
    // A message timeout of 1 s and a handler of 2.5 s: the fire goes out again to the same (only) consumer.
    await consumer(
      'billing',
      async () => {
        runs++;
        await sleep(2_500);
      },
      { messageTimeoutMs: 1_000 },
    );
    await groupsKnown('exports', ['billing']);
    hub.deliver(exportFireOf());
    await until(() => outcomes.length === 1, 'the outcome', 10_000);
    await sleep(500);
    expect(standIn.persistentSent('kairos~billing~exports')).toBeGreaterThanOrEqual(2);
    expect(runs).toBe(1);
    expect(outcomes).toHaveLength(1);
  });

  it('parks an event that is not a fire and goes on with the next', async () => {
    await start();
    const errors: Error[] = [];
    const handled: string[] = [];
    await consumer('billing', (fire) => void handled.push(fire.fireId), { onError: (e) => errors.push(e) });
    await store.appendToStream(firesStreamOf('exports'), [
      { id: randomUUID(), type: 'FirePublished', data: { v: 1, fireId: 'not-a-uuid' } },
    ]);
    await groupsKnown('exports', ['billing']);
    const fire = exportFireOf();
    hub.deliver(fire);
    await until(() => outcomes.length === 1, 'the outcome of the good fire');
    expect(handled).toEqual([fire.fireId]);
    await until(() => errors.length === 1, 'the parking reported');
    expect(errors[0]!.message).toMatch(/kairos-fires-exports@0 parked, not a fire: .*fireId/);
    const parked = await standInParked(standIn, 'kairos~billing~exports');
    expect(parked).toBe(1);
  });

  it('does not run a fire past its deadline', async () => {
    await start();
    let runs = 0;
    await consumer('billing', () => void runs++);
    await groupsKnown('exports', ['billing']);
    // Published straight to the log, as a node would have before a long outage of every consumer.
    await publishStraight(store, exportFireOf({ deadline: Date.now() - 1 }), ['billing']);
    const live = exportFireOf();
    hub.deliver(live);
    await until(() => outcomes.length === 1, 'the outcome of the live fire');
    expect(runs).toBe(1);
    expect(await store.readStream(outcomesStreamOf('exports'))).toHaveLength(1);
  });

  it('settles an attempt whose outcome was recorded before the hub knew it (a takeover)', async () => {
    await start();
    await consumer('billing', () => {});
    await groupsKnown('exports', ['billing']);
    const fire = exportFireOf();
    await store.appendToStream(outcomesStreamOf('exports'), [
      {
        id: randomUUID(),
        type: 'FireHandled',
        data: {
          v: 1,
          fireId: fire.fireId,
          attempt: 1,
          taskId: fire.taskId,
          group: 'billing',
          consumer: 'gone',
          status: 'succeeded',
          at: new Date().toISOString(),
        },
      },
    ]);
    await until(() => direct.knownOutcome(fire.fireId, 1, 'billing') !== undefined, 'the outcome read');
    hub.deliver(fire);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]!.details).toEqual([{ group: 'billing', consumer: 'gone', status: 'succeeded' }]);
    // Nothing was published: the group had already answered.
    expect(await store.readStream(firesStreamOf('exports'))).toHaveLength(0);
  });

  it('stops waiting for a retired group, and holds fires of a topic with no group until one is declared', async () => {
    await start();
    const sub = await consumer('audit', async (fire) => {
      await new Promise((resolve) => fire.signal.addEventListener('abort', resolve));
    });
    await consumer('billing', () => {});
    await groupsKnown('exports', ['audit', 'billing']);
    hub.deliver(exportFireOf());
    await until(() => hub.stats().inFlight === 1, 'the billing outcome in, audit still out');
    await sub.close();
    expect(await retireDirectGroup({ store: standIn.url, group: 'audit' })).toEqual(['exports']);
    await until(() => outcomes.length === 1, 'the attempt settled without audit');
    expect(outcomes[0]!.details).toEqual([expect.objectContaining({ group: 'billing', status: 'succeeded' })]);

    const held = exportFireOf({ target: { topic: 'reports' } });
    hub.deliver(held);
    expect(hub.stats().pending).toBe(1);
    await consumer('reports-team', () => {}, { topics: ['reports'] });
    await until(() => outcomes.length === 2, 'the held fire delivered once the group was declared');
    expect(outcomes[1]!.fireId).toBe(held.fireId);
  });

  it('records an outcome reached while the store is down once it is back, without running the fire again', async () => {
    await start();
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await consumer('billing', async () => {
      runs++;
      await gate;
    });
    await groupsKnown('exports', ['billing']);
    hub.deliver(exportFireOf());
    await until(() => runs === 1, 'the handler running');
    const restarted = standIn.restart(1_500);
    await sleep(200);
    // The handler finishes while nothing listens: the outcome waits and is appended once the store is back.
    release();
    await restarted;
    await until(() => outcomes.length === 1, 'the outcome after the restart', 15_000);
    expect(runs).toBe(1);
    expect(await store.readStream(outcomesStreamOf('exports'))).toHaveLength(1);
  });

  it('acks without running a fire published for other groups only', async () => {
    await start();
    let runs = 0;
    await consumer('billing', () => void runs++);
    await groupsKnown('exports', ['billing']);
    // As a node publishes after a takeover when billing had already answered: only for the groups still waiting.
    await publishStraight(store, exportFireOf(), ['audit']);
    const live = exportFireOf();
    hub.deliver(live);
    await until(() => outcomes.length === 1, 'the outcome of the fire meant for billing');
    expect(runs).toBe(1);
    expect(outcomes[0]!.fireId).toBe(live.fireId);
    expect(standIn.persistentSent('kairos~billing~exports')).toBe(2);
  });

  it('reads only its own topic: exports is not exports.daily', async () => {
    await start();
    const onExports: string[] = [];
    await consumer('billing', (fire) => void onExports.push(fire.topic));
    await consumer('billing', () => {}, { topics: ['exports.daily'] });
    await groupsKnown('exports.daily', ['billing']);
    hub.deliver(exportFireOf({ target: { topic: 'exports.daily' } }));
    hub.deliver(exportFireOf());
    await until(() => outcomes.length === 2, 'both outcomes');
    expect(onExports).toEqual(['exports']);
  });

  it('records and acks the outcome of a handler that finishes while the consumer closes', async () => {
    await start();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const a = await consumer(
      'billing',
      async () => {
        await gate;
      },
      { consumerId: 'a', closeTimeoutMs: 5_000 },
    );
    await groupsKnown('exports', ['billing']);
    hub.deliver(exportFireOf());
    await until(() => standIn.persistentSent('kairos~billing~exports') === 1, 'the fire sent to a');
    const onB: string[] = [];
    await consumer('billing', (fire) => void onB.push(fire.fireId), { consumerId: 'b' });
    const closed = a.close();
    await sleep(100);
    release();
    await closed;
    await until(() => outcomes.length === 1, 'the outcome');
    await sleep(500);
    expect(outcomes[0]!.details).toEqual([{ group: 'billing', consumer: 'a', status: 'succeeded' }]);
    // Acked before leaving: the group never handed it to b.
    expect(onB).toEqual([]);
    expect(standIn.persistentSent('kairos~billing~exports')).toBe(1);
  });

  it('waits for connected and direct groups of one topic alike', async () => {
    await start();
    await consumer('billing', () => {});
    await groupsKnown('exports', ['billing']);
    const sent: Array<{ type: string; deliveryId?: string }> = [];
    const session = hub.attach(
      { group: 'web', topics: ['exports'], consumerId: 'w1' },
      { send: (message) => void sent.push(message as never), close: () => {} },
    );
    const fire = exportFireOf();
    hub.deliver(fire);
    const delivery = sent.find((m) => m.type === 'fire');
    expect(delivery).toBeDefined();
    await sleep(500);
    // billing (direct) has answered by now; web (connected) has not.
    expect(outcomes).toHaveLength(0);
    session.receive(JSON.stringify({ v: 1, type: 'outcome', deliveryId: delivery!.deliveryId, status: 'succeeded' }));
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]!.details.map((d) => d.group)).toEqual(['web', 'billing']);
    session.closed();
  });

  it('refuses bad options naming the field', () => {
    const handler = () => {};
    const fieldOf = (call: () => unknown): string | undefined => {
      try {
        call();
      } catch (error) {
        if (isValidationError(error)) return error.issues[0]?.path;
        throw error;
      }
      return undefined;
    };
    expect(fieldOf(() => subscribe({ group: 'g', topics: ['t'] }, handler))).toBe('url');
    expect(fieldOf(() => subscribe({ url: 'http://x', store: 'esdb://x', group: 'g', topics: ['t'] }, handler))).toBe(
      'store',
    );
    expect(fieldOf(() => subscribe({ store: 'sqlite:x.db', group: 'g', topics: ['t'] }, handler))).toBe('store');
    expect(fieldOf(() => subscribe({ store: 'esdb://x:1?tls=false', group: 'g/h', topics: ['t'] }, handler))).toBe(
      'group',
    );
    expect(
      fieldOf(() =>
        subscribe({ store: 'esdb://x:1?tls=false', group: 'g', topics: ['t'], direct: { bufferSize: 0 } }, handler),
      ),
    ).toBe('direct.bufferSize');
  });
});

/** A `FirePublished` appended to the log directly, as the node's direct delivery writes it. */
const publishStraight = (store: EsdbEventStore, fire: FireDelivery, groups: string[]) =>
  store.appendToStream(firesStreamOf('exports'), [
    {
      id: randomUUID(),
      type: 'FirePublished',
      data: { v: 1, ...topicFireFieldsOf(fire, 'exports'), node: fire.node, groups },
    },
  ]);

/** How many events the group parked: EventStoreDB keeps them in the group's parked stream. */
const standInParked = async (standIn: EsdbStandIn, group: string): Promise<number> => {
  const { EventStoreDBClient } = await import('@eventstore/db-client');
  const client = EventStoreDBClient.connectionString(standIn.url);
  try {
    let n = 0;
    for await (const _ of client.readStream(`$persistentsubscription-$all::${group}-parked`)) n++;
    return n;
  } catch {
    return 0;
  } finally {
    await client.dispose();
  }
};
