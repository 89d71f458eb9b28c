import { mkdirSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { defer, skip } from 'rxjs';
import { buildServer } from '../api/server.js';
import { NodeLoad } from './nodeLoad.js';
import { kairosVersion } from './version.js';
import type { Clock } from '../clock/clock.js';
import { systemClock } from '../clock/clock.js';
import type { CompiledConfig } from '../config/config.js';
import { LocalCoordinator } from '../coordination/localCoordinator.js';
import { ZooKeeperCoordinator } from '../coordination/zookeeper/zookeeperCoordinator.js';
import { SchedulerNode } from '../node/schedulerNode.js';
import { openReadSide } from '../projections/host/openReadSide.js';
import type { ReadSidePort } from '../projections/host/readSidePort.js';
import type { EventStore } from '../store/eventStore.js';
import { isEsdbUrl, openEventStore } from '../store/openEventStore.js';
import { DirectDelivery } from '../targets/direct/directDelivery.js';
import { HttpTarget } from '../targets/http/httpTarget.js';
import { RoutingTarget } from '../targets/routingTarget.js';
import { ConsumerRelay } from '../targets/topic/consumerRelay.js';
import { TopicHub } from '../targets/topic/topicHub.js';

export type RunningKairos = {
  node: SchedulerNode;
  store: EventStore;
  hub: TopicHub;
  readSide: ReadSidePort | null;
  server: FastifyInstance;
  /** Base URL the API listens on. */
  url: string;
  close(): Promise<void>;
};

/**
 * The composition root of one node: store, targets, scheduler and API, wired once. The API listens
 * first (so `/healthz` answers and `/readyz` says 503 during recovery), then the node replays the log.
 */
export const startKairos = async (
  config: CompiledConfig,
  options: { logger?: Logger; clock?: Clock } = {},
): Promise<RunningKairos> => {
  const logger = options.logger ?? pino({ level: config.logLevel });
  const clock = options.clock ?? systemClock;
  mkdirSync(config.dataDir, { recursive: true });
  const store = await openEventStore(config.store);

  // Targets report outcomes to the node, which is built after them: the closure reads it once set.
  const onOutcome = (outcome: Parameters<SchedulerNode['reportOutcome']>[0]): void => void node.reportOutcome(outcome);
  const hub = new TopicHub(onOutcome, {
    node: config.nodeId,
    ackTimeout: config.subscribers.ackTimeout,
    groupGrace: config.subscribers.groupGrace,
    clock,
    logger,
  });
  // Direct groups read fires from the log and write outcomes to it (docs/subscribers.md). They need
  // EventStoreDB's persistent subscriptions, so an embedded node does not follow them (nor pay for it).
  const direct = isEsdbUrl(config.store)
    ? new DirectDelivery({ store, hub, node: config.nodeId, clock, logger })
    : null;
  const target = new RoutingTarget({ topics: hub, http: new HttpTarget(onOutcome, { clock, logger }) });
  const node = new SchedulerNode({
    nodeId: config.nodeId,
    store,
    target,
    clock,
    logger,
    drainTimeoutMs: config.drainTimeoutMs,
    maxDecisionsInFlight: config.maxDecisionsInFlight,
    fireLeadMs: config.fireLeadMs,
    snapshot: config.snapshot,
    retention: config.retention,
    coordinator: ({ maxEpoch }) =>
      config.zk
        ? new ZooKeeperCoordinator({
            nodeId: config.nodeId,
            zk: config.zk,
            ...(config.zk.slotCount ? { slotCount: config.zk.slotCount } : {}),
            logger,
            member: { ...config.member, address: config.member.address ?? url, version: kairosVersion() },
          })
        : new LocalCoordinator({
            nodeId: config.nodeId,
            dataDir: config.dataDir,
            minEpoch: () => maxEpoch,
            labels: config.member.labels,
          }),
  });
  const readSide = openReadSide(config, store, { clock, logger });
  // While the node is busy, its read side takes only the CPU the node leaves, in larger commits.
  const load = readSide ? new NodeLoad({ clock }) : null;
  load?.busy$.pipe(skip(1)).subscribe((busy) => {
    logger.info(
      { busy },
      busy ? 'node busy: the read side yields the CPU fully' : 'node calm: the read side back at nice 19',
    );
    readSide?.nodeBusy(busy);
  });
  // What the node appended last (its releases on a graceful stop): the read side records it before it stops.
  let lastAppend = 0;
  node.appended$.subscribe(({ position }) => (lastAppend = Math.max(lastAppend, Number(position))));
  const server = await buildServer({
    node,
    store,
    hub,
    readSide,
    clock,
    stream: config.stream,
    logger,
    version: kairosVersion(),
  });
  try {
    await server.listen({ port: config.port, host: config.host });
  } catch (err) {
    // A port in use must not leave the store (and its writer thread) or the read side open behind it.
    await Promise.allSettled([server.close(), target.close(), readSide?.close()]);
    await store.close();
    throw err;
  }
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, node: config.nodeId, store: config.store }, 'API listening');

  // Consumers connected here also get the fires of the tasks other members hold (docs/subscribers.md).
  // The members are known once the node has started: `defer` reads them when the relay starts.
  const relay = new ConsumerRelay({
    nodeId: config.nodeId,
    hub,
    members$: defer(() => node.members$()),
    clock,
    logger,
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      load?.stop();
      await node.stop();
      await relay.close();
      await direct?.close();
      await target.close();
      await server.close();
      await readSide?.close(lastAppend);
      await store.close();
    })());
  try {
    // Before the node: fires it redelivers at start must find the direct groups already known.
    await direct?.start();
    await node.start();
  } catch (err) {
    await close();
    throw err;
  }
  relay.start();
  load?.start();
  return { node, store, hub, readSide, server, url, close };
};
