import { once } from 'node:events';
import {
  BACKWARDS,
  DeadlineExceededError,
  END,
  EventStoreDBClient,
  excludeSystemEvents,
  jsonEvent,
  MaxAppendSizeExceededError,
  NO_STREAM,
  PersistentSubscriptionDoesNotExistError,
  PersistentSubscriptionDroppedError,
  PersistentSubscriptionExistsError,
  PersistentSubscriptionMaximumSubscribersReachedError,
  persistentSubscriptionToAllSettingsFromDefaults,
  START,
  STREAM_EXISTS,
  StreamNotFoundError,
  streamNameFilter,
  UnknownError,
  WrongExpectedVersionError,
  type AllStreamResolvedEvent,
  type PersistentSubscriptionToAll,
  type PersistentSubscriptionToAllSettings,
  type Position,
  type ResolvedEvent,
} from '@eventstore/db-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rejectionOf } from '../contract/eventStoreFixtures.js';
import { startEsdbStandIn, type EsdbStandIn } from '../support/esdbStandIn/index.js';
import { sleep, until, waitUntil } from './support/waiting.js';

/**
 * The EventStoreDB protocol stand-in (test/support/esdbStandIn) driven by the real @eventstore/db-client over
 * real gRPC: what the client sees must be what it would see from an EventStoreDB node.
 */
describe('EventStoreDB protocol stand-in, through the real client', () => {
  let standIn: EsdbStandIn;
  const clients: EventStoreDBClient[] = [];
  const connect = (url = standIn.url): EventStoreDBClient => {
    const client = EventStoreDBClient.connectionString(url);
    clients.push(client);
    return client;
  };
  beforeEach(async () => {
    standIn = await startEsdbStandIn();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.dispose()));
    await standIn.stop();
  });

  const event = (data: Record<string, unknown> = {}) => jsonEvent({ type: 'Tested', data });
  const all = async <T>(source: AsyncIterable<T>): Promise<T[]> => {
    const items: T[] = [];
    for await (const item of source) items.push(item);
    return items;
  };
  const revisions = (events: ResolvedEvent[]) => events.map((e) => e.event?.revision);
  const userEvents = async (client: EventStoreDBClient) =>
    (await all(client.readAll())).filter((e) => !e.event?.streamId.startsWith('$'));

  describe('connecting', () => {
    it('serves a discover:// connection string through gossip, naming itself the leader', async () => {
      const client = connect(`esdb+discover://127.0.0.1:${standIn.port}?tls=false`);
      await client.appendToStream('s', event());
      expect(revisions(await all(client.readStream('s')))).toEqual([0n]);
    });

    it('is never empty: like a fresh node, $all starts with a system event', async () => {
      const [first] = await all(connect().readAll({ maxCount: 1 }));
      expect(first?.event?.streamId).toBe('$epoch-information');
      expect(first?.event?.position?.commit).toBeGreaterThan(0n);
    });
  });

  describe('appendToStream', () => {
    it('returns the last revision and a position that only grows, commit = prepare = the event in $all', async () => {
      const client = connect();
      const first = await client.appendToStream('s', [event(), event()], { expectedRevision: NO_STREAM });
      const second = await client.appendToStream('s', event(), { expectedRevision: 1n });
      expect(first.nextExpectedRevision).toBe(1n);
      expect(second.nextExpectedRevision).toBe(2n);
      expect(second.position?.commit).toBeGreaterThan(first.position?.commit ?? 0n);
      const stored = await userEvents(client);
      expect(stored.map((e) => e.event?.position)).toEqual(
        stored.map((e) => ({ commit: e.event?.position?.commit, prepare: e.event?.position?.commit })),
      );
      expect(stored[1]?.event?.position).toEqual(first.position);
      expect(stored[2]?.event?.position).toEqual(second.position);
      // Positions are byte offsets in the log: gaps, never consecutive numbers.
      expect((stored[1]?.event?.position?.commit ?? 0n) - (stored[0]?.event?.position?.commit ?? 0n)).toBeGreaterThan(
        1n,
      );
    });

    it.each([
      ['the batched append (BatchAppend)', {}],
      ['the unary append (Append, used with per-call credentials)', { credentials: { username: 'u', password: 'p' } }],
    ])('refuses a wrong expected revision with the actual one, through %s', async (_, options) => {
      const client = connect();
      await client.appendToStream('s', [event(), event()], options);
      const cases = [
        { stream: 's', expectedRevision: NO_STREAM, actual: 1n },
        { stream: 's', expectedRevision: 0n, actual: 1n },
        { stream: 's', expectedRevision: 5n, actual: 1n },
        { stream: 'missing', expectedRevision: STREAM_EXISTS, actual: 'no_stream' },
        { stream: 'missing', expectedRevision: 0n, actual: 'no_stream' },
      ] as const;
      for (const { stream, expectedRevision, actual } of cases) {
        const error = await rejectionOf(client.appendToStream(stream, event(), { ...options, expectedRevision }));
        expect(error).toBeInstanceOf(WrongExpectedVersionError);
        expect(error).toMatchObject({ streamName: stream, expectedVersion: expectedRevision, actualVersion: actual });
      }
      expect(revisions(await all(client.readStream('s')))).toEqual([0n, 1n]);
    });

    it('re-appending the same event ids at the same place is a no-op that answers like the first append', async () => {
      const client = connect();
      await client.appendToStream('s', event());
      const batch = [event({ n: 1 }), event({ n: 2 })];
      const first = await client.appendToStream('s', batch, { expectedRevision: 0n });
      await client.appendToStream('s', event());
      expect(await client.appendToStream('s', batch, { expectedRevision: 0n })).toEqual(first);
      expect(await client.appendToStream('s', batch)).toEqual(first);
      expect(await client.appendToStream('s', batch, { expectedRevision: STREAM_EXISTS })).toEqual(first);
      expect(await client.appendToStream('s', batch.slice(1), { expectedRevision: 1n })).toEqual(first);
      expect(revisions(await all(client.readStream('s')))).toEqual([0n, 1n, 2n, 3n]);
    });

    it("follows EventStoreDB's idempotency rules where they surprise: part of a batch stored, ids of another stream", async () => {
      const client = connect();
      const [a, b] = [event(), event()];
      await client.appendToStream('s', [a, b], { expectedRevision: NO_STREAM });
      // The first id decides; a batch only partly stored is refused as a wrong expected version.
      const partly = await rejectionOf(client.appendToStream('s', [b, event()]));
      expect(partly).toMatchObject({ actualVersion: 1n, expectedVersion: 'any' });
      // At an explicit revision every id must be where the append would put it.
      await expect(client.appendToStream('s', [b, a], { expectedRevision: NO_STREAM })).rejects.toBeInstanceOf(
        WrongExpectedVersionError,
      );
      // Event ids are not unique across streams: the same ids in another stream are simply written.
      await expect(client.appendToStream('other', [a, b])).resolves.toMatchObject({ nextExpectedRevision: 1n });
    });

    it('refuses an append over the 1 MiB maximum append size, batched or not', async () => {
      const client = connect();
      const big = event({ blob: 'x'.repeat(1_100_000) });
      await expect(client.appendToStream('s', big)).rejects.toBeInstanceOf(MaxAppendSizeExceededError);
      await expect(
        client.appendToStream('s', big, { credentials: { username: 'u', password: 'p' } }),
      ).rejects.toBeInstanceOf(MaxAppendSizeExceededError);
      await expect(all(client.readStream('s'))).rejects.toBeInstanceOf(StreamNotFoundError);
    });

    it('treats ids case-insensitively and answers them lower-case', async () => {
      const client = connect();
      const id = 'A0B1C2D3-E4F5-4A6B-8C7D-9E0F1A2B3C4D';
      const first = await client.appendToStream('s', jsonEvent({ id, type: 'T', data: {} }));
      expect(await client.appendToStream('s', jsonEvent({ id: id.toLowerCase(), type: 'T', data: {} }))).toEqual(first);
      expect((await all(client.readStream('s'))).map((e) => e.event?.id)).toEqual([id.toLowerCase()]);
    });

    it('writes an empty append as a record of its own: the stream stays as it was, the log moves on', async () => {
      const client = connect();
      const before = await client.appendToStream('s', event());
      const empty = await client.appendToStream('missing', [], { expectedRevision: NO_STREAM });
      expect(empty.position?.commit).toBeGreaterThan(before.position?.commit ?? 0n);
      // The server answers "no stream"; the client reads the revision it leaves unset as 0.
      expect(empty.nextExpectedRevision).toBe(0n);
      await expect(all(client.readStream('missing'))).rejects.toBeInstanceOf(StreamNotFoundError);
      await expect(client.appendToStream('s', [], { expectedRevision: 1n })).rejects.toBeInstanceOf(
        WrongExpectedVersionError,
      );
    });

    it('pipelines many appends over one BatchAppend call, each answered on its own', async () => {
      const client = connect();
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => client.appendToStream(`p-${i % 10}`, event({ i }))),
      );
      expect(new Set(results.map((r) => r.position?.commit)).size).toBe(100);
      for (let s = 0; s < 10; s++)
        expect(revisions(await all(client.readStream(`p-${s}`)))).toEqual(
          Array.from({ length: 10 }, (_, i) => BigInt(i)),
        );
      const commits = (await userEvents(client)).map((e) => e.event?.position?.commit ?? 0n);
      expect(commits).toEqual([...commits].sort((x, y) => (x < y ? -1 : 1)));
    });
  });

  describe('deadlines and timeouts', () => {
    it('answers an append whose deadline has passed on arrival as timed out, and writes nothing', async () => {
      const client = connect();
      await expect(client.appendToStream('s', event(), { deadline: -1_000 })).rejects.toBeInstanceOf(
        DeadlineExceededError,
      );
      await expect(all(client.readStream('s'))).rejects.toBeInstanceOf(StreamNotFoundError);
    });

    it('lets a slow unary append miss its deadline, and it lands all the same', async () => {
      const client = connect();
      standIn.setLatency(300);
      const error = await rejectionOf(
        client.appendToStream('s', event(), { deadline: 50, credentials: { username: 'u', password: 'p' } }),
      );
      expect(error).toBeInstanceOf(DeadlineExceededError);
      standIn.setLatency(0);
      await waitUntil(async () => (await all(client.readStream('s')).catch(() => [])).length === 1, 'the late append');
    });

    it('answers a batched append the server could not commit within its 2 s write timeout as timed out', async () => {
      const client = connect();
      await client.appendToStream('s', event());
      standIn.setLatency(2_300);
      await expect(client.appendToStream('s', event())).rejects.toBeInstanceOf(DeadlineExceededError);
      standIn.setLatency(0);
      await waitUntil(async () => (await all(client.readStream('s'))).length === 2, 'the late append');
    });
  });

  describe('readStream and readAll', () => {
    it('reads a stream forwards and backwards from a revision, up to maxCount', async () => {
      const client = connect();
      await client.appendToStream(
        's',
        [0, 1, 2, 3, 4].map((n) => event({ n })),
      );
      expect(revisions(await all(client.readStream('s', { fromRevision: 2n })))).toEqual([2n, 3n, 4n]);
      expect(revisions(await all(client.readStream('s', { fromRevision: 1n, maxCount: 2 })))).toEqual([1n, 2n]);
      expect(
        revisions(await all(client.readStream('s', { direction: BACKWARDS, fromRevision: END, maxCount: 2 }))),
      ).toEqual([4n, 3n]);
      expect(revisions(await all(client.readStream('s', { direction: BACKWARDS, fromRevision: 1n })))).toEqual([
        1n,
        0n,
      ]);
      expect(await all(client.readStream('s', { fromRevision: END }))).toEqual([]);
      const [read] = await all(client.readStream('s', { maxCount: 1 }));
      expect(read?.event).toMatchObject({ streamId: 's', type: 'Tested', data: { n: 0 }, isJson: true });
      expect(read?.event?.created.getTime()).toBeGreaterThan(Date.now() - 60_000);
    });

    it('answers a missing stream with StreamNotFoundError, forwards and backwards', async () => {
      const client = connect();
      const error = await rejectionOf(all(client.readStream('missing')));
      expect(error).toBeInstanceOf(StreamNotFoundError);
      expect(error).toMatchObject({ streamName: 'missing' });
      await expect(
        all(client.readStream('missing', { direction: BACKWARDS, fromRevision: END })),
      ).rejects.toBeInstanceOf(StreamNotFoundError);
    });

    it('reads $all forwards from a position (inclusive) and backwards from one (exclusive), up to maxCount', async () => {
      const client = connect();
      for (const stream of ['a', 'b', 'a', 'c']) await client.appendToStream(stream, event());
      const everything = await all(client.readAll());
      const third = everything[3]?.event?.position as Position;
      expect((await all(client.readAll({ fromPosition: third, maxCount: 2 }))).map((e) => e.event?.position)).toEqual([
        third,
        everything[4]?.event?.position,
      ]);
      const backwards = await all(client.readAll({ fromPosition: third, direction: BACKWARDS }));
      expect(backwards.map((e) => e.event?.position)).toEqual(
        everything
          .slice(0, 3)
          .map((e) => e.event?.position)
          .reverse(),
      );
      expect(await all(client.readAll({ fromPosition: END }))).toEqual([]);
      expect(
        (await all(client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 })))[0]?.event?.streamId,
      ).toBe('c');
    });

    it('refuses to read $all from a position inside a record', async () => {
      const client = connect();
      const { position } = await client.appendToStream('s', event());
      const inside = { commit: (position?.commit ?? 0n) + 1n, prepare: (position?.commit ?? 0n) + 1n };
      await expect(all(client.readAll({ fromPosition: inside }))).rejects.toBeInstanceOf(UnknownError);
    });
  });

  describe('subscribeToAll and subscribeToStream', () => {
    it('catches up then goes live through a server-side stream-name filter, in position order', async () => {
      const client = connect();
      await client.appendToStream('job-1', event({ n: 1 }));
      await client.appendToStream('other', event({ n: 2 }));
      await client.appendToStream('job-2', event({ n: 3 }));
      const subscription = client.subscribeToAll({ filter: streamNameFilter({ prefixes: ['job-'] }) });
      const seen: AllStreamResolvedEvent[] = [];
      subscription.on('data', (e: AllStreamResolvedEvent) => seen.push(e));
      await once(subscription, 'caughtUp');
      expect(seen.map((e) => e.event?.data)).toEqual([{ n: 1 }, { n: 3 }]);
      await client.appendToStream('other', event({ n: 4 }));
      await client.appendToStream('job-1', event({ n: 5 }));
      await until(() => seen.length === 3, 'the live event');
      expect(seen.map((e) => e.event?.data)).toEqual([{ n: 1 }, { n: 3 }, { n: 5 }]);
      await subscription.unsubscribe();
    });

    it('hides system events with excludeSystemEvents and starts strictly after a position or at the end', async () => {
      const client = connect();
      await client.setStreamMetadata('s', { maxCount: 5 });
      const { position } = await client.appendToStream('s', [event({ n: 1 }), event({ n: 2 })]);
      await client.appendToStream('s', event({ n: 3 }));
      const fromStart = client.subscribeToAll({ filter: excludeSystemEvents() });
      const afterFirst = client.subscribeToAll({ fromPosition: position as Position });
      const fromEnd = client.subscribeToAll({ fromPosition: END });
      const seen = new Map<string, unknown[]>();
      const subscriptions = { start: fromStart, position: afterFirst, end: fromEnd };
      for (const [name, subscription] of Object.entries(subscriptions)) {
        seen.set(name, []);
        subscription.on('data', (e: AllStreamResolvedEvent) => seen.get(name)?.push(e.event?.data));
      }
      await Promise.all(Object.values(subscriptions).map((subscription) => once(subscription, 'caughtUp')));
      await client.appendToStream('s', event({ n: 4 }));
      await until(() => seen.get('start')?.length === 4 && seen.get('end')?.length === 1, 'the live event');
      expect(seen.get('start')).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
      expect(seen.get('position')).toEqual([{ n: 3 }, { n: 4 }]);
      expect(seen.get('end')).toEqual([{ n: 4 }]);
      await Promise.all([fromStart, afterFirst, fromEnd].map((s) => s.unsubscribe()));
    });

    it('reports checkpoints: after each page of catch-up considered, and every 32 × checkpointInterval events live', async () => {
      const client = connect();
      await client.appendToStream(
        'noise',
        Array.from({ length: 40 }, () => event()),
      );
      const log = await all(client.readAll());
      const checkpoints: Position[] = [];
      const subscription = client.subscribeToAll({
        filter: streamNameFilter({
          prefixes: ['job-'],
          checkpointInterval: 1,
          checkpointReached: (_, p) => void checkpoints.push(p),
        }),
      });
      subscription.on('data', () => undefined);
      await once(subscription, 'caughtUp');
      // Nothing matched: the checkpoint is where the second page started, which is no event's place.
      expect(checkpoints).toEqual([{ commit: log[32]?.event?.position?.commit, prepare: 0n }]);
      await client.appendToStream(
        'noise',
        Array.from({ length: 40 }, () => event()),
      );
      const live = (await all(client.readAll())).slice(log.length);
      await until(() => checkpoints.length === 2, 'a live checkpoint');
      expect(checkpoints[1]).toEqual(live[31]?.event?.position);
      await subscription.unsubscribe();
    });

    it('ends cleanly on the server when the client unsubscribes', async () => {
      const client = connect();
      const subscription = client.subscribeToAll();
      const errors: unknown[] = [];
      subscription.on('error', (e) => errors.push(e));
      subscription.on('data', () => undefined);
      await once(subscription, 'caughtUp');
      expect(standIn.openStreams()).toBe(1);
      await subscription.unsubscribe();
      await until(() => standIn.openStreams() === 0, 'the server to let the subscription go');
      await client.appendToStream('s', event());
      await sleep(50);
      expect(errors).toEqual([]);
    });

    it('subscribes to a stream after a revision, or waits for a stream that does not exist yet', async () => {
      const client = connect();
      await client.appendToStream(
        's',
        [0, 1, 2].map((n) => event({ n })),
      );
      const afterOne = client.subscribeToStream('s', { fromRevision: 1n });
      const missing = client.subscribeToStream('later', { fromRevision: START });
      const seen: unknown[] = [];
      const later: unknown[] = [];
      afterOne.on('data', (e: ResolvedEvent) => seen.push(e.event?.data));
      missing.on('data', (e: ResolvedEvent) => later.push(e.event?.data));
      await Promise.all([once(afterOne, 'caughtUp'), once(missing, 'caughtUp')]);
      await client.appendToStream('s', event({ n: 3 }));
      await client.appendToStream('later', event({ n: 0 }));
      await until(() => seen.length === 2 && later.length === 1, 'the live events');
      expect(seen).toEqual([{ n: 2 }, { n: 3 }]);
      expect(later).toEqual([{ n: 0 }]);
      await Promise.all([afterOne.unsubscribe(), missing.unsubscribe()]);
    });
  });

  describe('persistent subscriptions to $all', () => {
    const settings = (changes: Partial<PersistentSubscriptionToAllSettings> = {}) =>
      persistentSubscriptionToAllSettingsFromDefaults({ startFrom: START, ...changes });
    const jobs = streamNameFilter({ prefixes: ['job-'] });
    type Delivery = { id: string; stream: string; retryCount: number };
    const consume = async (
      subscription: PersistentSubscriptionToAll,
      handle: (d: Delivery, e: Parameters<PersistentSubscriptionToAll['ack']>[0]) => Promise<void> | void,
    ): Promise<Delivery[]> => {
      const deliveries: Delivery[] = [];
      subscription.on('data', (e) => {
        const delivery = { id: e.event?.id ?? '', stream: e.event?.streamId ?? '', retryCount: e.retryCount };
        deliveries.push(delivery);
        void handle(delivery, e);
      });
      await once(subscription, 'confirmation');
      return deliveries;
    };
    const parked = async (client: EventStoreDBClient, group: string) =>
      (await all(client.readStream(`$persistentsubscription-$all::${group}-parked`)).catch(() => [])).map((e) =>
        Buffer.from(e.event?.data as Uint8Array).toString(),
      );

    it('creates, updates and deletes groups, with the errors of a missing or existing group', async () => {
      const client = connect();
      await client.createPersistentSubscriptionToAll('g', settings(), { filter: jobs });
      await expect(client.createPersistentSubscriptionToAll('g', settings())).rejects.toBeInstanceOf(
        PersistentSubscriptionExistsError,
      );
      await expect(client.updatePersistentSubscriptionToAll('nope', settings())).rejects.toBeInstanceOf(
        PersistentSubscriptionDoesNotExistError,
      );
      await expect(client.deletePersistentSubscriptionToAll('nope')).rejects.toBeInstanceOf(
        PersistentSubscriptionDoesNotExistError,
      );
      const missing = client.subscribeToPersistentSubscriptionToAll('nope');
      expect((await once(missing, 'error'))[0]).toBeInstanceOf(PersistentSubscriptionDoesNotExistError);

      const consumer = client.subscribeToPersistentSubscriptionToAll('g');
      const dropped = once(consumer, 'error');
      await consume(consumer, () => undefined);
      await client.updatePersistentSubscriptionToAll('g', settings({ maxSubscriberCount: 1 }));
      expect((await dropped)[0]).toBeInstanceOf(PersistentSubscriptionDroppedError);
      const only = client.subscribeToPersistentSubscriptionToAll('g');
      const deleted = once(only, 'error');
      await consume(only, () => undefined);
      const second = client.subscribeToPersistentSubscriptionToAll('g');
      expect((await once(second, 'error'))[0]).toBeInstanceOf(PersistentSubscriptionMaximumSubscribersReachedError);
      await client.deletePersistentSubscriptionToAll('g');
      expect((await deleted)[0]).toBeInstanceOf(PersistentSubscriptionDroppedError);
      await expect(client.deletePersistentSubscriptionToAll('g')).rejects.toBeInstanceOf(
        PersistentSubscriptionDoesNotExistError,
      );
    });

    it('shares the filtered events between competing consumers, each event to one of them', async () => {
      const [first, second] = [connect(), connect()];
      await first.createPersistentSubscriptionToAll('g', settings(), { filter: jobs });
      const ack = (s: PersistentSubscriptionToAll) => async (_: Delivery, e: Parameters<typeof s.ack>[0]) => {
        await sleep(5);
        await s.ack(e);
      };
      const a = first.subscribeToPersistentSubscriptionToAll('g', { bufferSize: 1 });
      const b = second.subscribeToPersistentSubscriptionToAll('g', { bufferSize: 1 });
      const [toA, toB] = await Promise.all([consume(a, ack(a)), consume(b, ack(b))]);
      for (let i = 0; i < 10; i++) await first.appendToStream(i % 3 === 0 ? 'other' : `job-${i}`, event({ i }));
      await until(() => toA.length + toB.length === 6, 'every job delivered');
      await sleep(50);
      expect(toA.length + toB.length).toBe(6);
      expect(toA.length).toBeGreaterThan(0);
      expect(toB.length).toBeGreaterThan(0);
      expect(new Set([...toA, ...toB].map((d) => d.stream)).size).toBe(6);
    });

    it.each([
      ['DispatchToSingle', (a: string[], b: string[]) => expect([a.length, b.length].sort()).toEqual([0, 6])],
      ['Pinned', (a: string[], b: string[]) => expect(new Set(a).size + new Set(b).size).toBe(2)],
    ] as const)('follows the %s consumer strategy', async (strategy, check) => {
      const client = connect();
      await client.createPersistentSubscriptionToAll('g', settings({ consumerStrategyName: strategy }), {
        filter: jobs,
      });
      const [a, b] = [
        client.subscribeToPersistentSubscriptionToAll('g'),
        client.subscribeToPersistentSubscriptionToAll('g'),
      ];
      const [toA, toB] = await Promise.all([consume(a, (_, e) => a.ack(e)), consume(b, (_, e) => b.ack(e))]);
      for (let i = 0; i < 6; i++) await client.appendToStream(`job-${i % 2}`, event());
      await until(() => toA.length + toB.length === 6, 'every job delivered');
      check(
        toA.map((d) => d.stream),
        toB.map((d) => d.stream),
      );
    });

    it('retries a nacked event with a growing retryCount and parks it after maxRetryCount; park and skip at once', async () => {
      const client = connect();
      await client.createPersistentSubscriptionToAll('g', settings({ maxRetryCount: 2 }), { filter: jobs });
      const subscription = client.subscribeToPersistentSubscriptionToAll('g');
      const deliveries = await consume(subscription, async (d, e) => {
        if (d.stream === 'job-retry') await subscription.nack('retry', 'try again', e);
        else if (d.stream === 'job-park') await subscription.nack('park', 'poison', e);
        else await subscription.nack('skip', 'not mine', e);
      });
      for (const stream of ['job-retry', 'job-park', 'job-skip']) await client.appendToStream(stream, event());
      await waitUntil(async () => (await parked(client, 'g')).length === 2, 'two parked events');
      expect(await parked(client, 'g')).toEqual(['0@job-park', '0@job-retry']);
      expect(deliveries.filter((d) => d.stream === 'job-retry').map((d) => d.retryCount)).toEqual([0, 1, 2]);
      expect(deliveries.filter((d) => d.stream !== 'job-retry').map((d) => d.retryCount)).toEqual([0, 0]);
    });

    it('redelivers an event not acked within messageTimeout', async () => {
      const client = connect();
      await client.createPersistentSubscriptionToAll('g', settings({ messageTimeout: 200 }), { filter: jobs });
      const subscription = client.subscribeToPersistentSubscriptionToAll('g');
      const deliveries = await consume(subscription, async (d, e) => {
        if (d.retryCount > 0) await subscription.ack(e);
      });
      await client.appendToStream('job-1', event());
      await until(() => deliveries.length === 2, 'the redelivery', 5_000);
      expect(deliveries.map((d) => d.retryCount)).toEqual([0, 1]);
      await sleep(1_200);
      expect(deliveries).toHaveLength(2);
    });

    it("hands a consumer's un-acked events to the others when its connection ends", async () => {
      const [leaving, staying] = [connect(), connect()];
      await staying.createPersistentSubscriptionToAll('g', settings(), { filter: jobs });
      for (let i = 0; i < 3; i++) await staying.appendToStream(`job-${i}`, event());
      const toLeaving = await consume(leaving.subscribeToPersistentSubscriptionToAll('g'), () => undefined);
      await until(() => toLeaving.length === 3, 'the first consumer to hold every event');
      const s = staying.subscribeToPersistentSubscriptionToAll('g');
      const toStaying = await consume(s, (_, e) => s.ack(e));
      expect(toStaying).toEqual([]);
      await leaving.dispose();
      await until(() => toStaying.length === 3, 'the redeliveries');
      expect(toStaying.map((d) => d.id)).toEqual(toLeaving.map((d) => d.id));
      expect(toStaying.map((d) => d.retryCount)).toEqual([1, 1, 1]);
    });
  });

  describe('stream metadata', () => {
    it('hides events beyond maxCount from stream reads, not from $all, and reads it back', async () => {
      const client = connect();
      await client.setStreamMetadata('s', { maxCount: 2 });
      await client.appendToStream(
        's',
        [0, 1, 2, 3, 4].map((n) => event({ n })),
      );
      expect(revisions(await all(client.readStream('s')))).toEqual([3n, 4n]);
      expect(revisions(await all(client.readStream('s', { direction: BACKWARDS, fromRevision: END })))).toEqual([
        4n,
        3n,
      ]);
      expect((await userEvents(client)).filter((e) => e.event?.streamId === 's')).toHaveLength(5);
      await client.setStreamMetadata('s', { maxCount: 2, truncateBefore: 4 });
      expect(revisions(await all(client.readStream('s')))).toEqual([4n]);
      expect((await client.getStreamMetadata('s')).metadata).toEqual({ maxCount: 2, truncateBefore: 4 });
      // The metadata stream $$s keeps only its last event.
      expect(revisions(await all(client.readStream('$$s')))).toEqual([1n]);
      expect(await client.getStreamMetadata('none')).toEqual({ streamName: 'none' });
    });

    it('hides events older than maxAge', async () => {
      const client = connect();
      await client.appendToStream('s', event({ n: 0 }));
      await client.setStreamMetadata('s', { maxAge: 1 });
      await sleep(1_100);
      await client.appendToStream('s', event({ n: 1 }));
      expect(revisions(await all(client.readStream('s')))).toEqual([1n]);
    });

    it('counts a stream with only metadata as existing for stream_exists', async () => {
      const client = connect();
      await client.setStreamMetadata('s', { maxCount: 10 });
      await expect(client.appendToStream('s', event(), { expectedRevision: STREAM_EXISTS })).resolves.toMatchObject({
        nextExpectedRevision: 0n,
      });
    });
  });

  describe('restart', () => {
    it('drops every connection and serves the same log again on the same port', async () => {
      const client = connect();
      await client.appendToStream('s', event());
      const subscription = client.subscribeToAll();
      subscription.on('data', () => undefined);
      await once(subscription, 'caughtUp');
      const failed = once(subscription, 'error');
      await standIn.restart();
      await failed;
      await until(() => standIn.openStreams() === 0, 'the subscription to be gone');
      await waitUntil(
        async () => (await all(client.readStream('s')).catch(() => [])).length === 1,
        'a read after restart',
      );
      await client.appendToStream('s', event(), { expectedRevision: 0n });
    });
  });
});
