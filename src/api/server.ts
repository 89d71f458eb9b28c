import fastifyWebsocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.js';
import type { SchedulerNode } from '../node/schedulerNode.js';
import type { ReadSidePort } from '../projections/host/readSidePort.js';
import type { EventStore } from '../store/eventStore.js';
import { topicRoutes } from '../targets/topic/topicRoutes.js';
import type { TopicHub } from '../targets/topic/topicHub.js';
import { verifyStore } from '../verify/verifyStore.js';
import { installErrorHandling, sendInputError } from './errorHandler.js';
import { clusterRoutes } from './clusterRoutes.js';
import { eventRoutes } from './eventRoutes.js';
import { nodeMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { readModelRoutes } from './readModelRoutes.js';
import { consistentReads, readRoutes } from './readRoutes.js';
import { streamRoutes, type StreamOptions } from './streamRoutes.js';
import { taskRoutes } from './taskRoutes.js';
import { applyRoutes } from './applyRoutes.js';

export type ApiDeps = {
  node: SchedulerNode;
  store: EventStore;
  hub: TopicHub;
  /** Null when the node runs without one (`KAIROS_READ_SIDE=off`): its routes then answer 503. */
  readSide: ReadSidePort | null;
  clock: Clock;
  stream: StreamOptions;
  logger: Logger;
  version: string;
};

/** The node's HTTP surface (design §7). Routes validate with zod and answer errors as `{code, message, details}`. */
export const buildServer = async (deps: ApiDeps): Promise<FastifyInstance> => {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1_048_576,
    // Task ids are up to 128 characters (the router's default limit is 100); longer ones reach the
    // route and get the id's own 400.
    routerOptions: { maxParamLength: 1_024 },
    // A stopping node closes every connection once its streams have been told (preClose): a keep-alive
    // connection whose request was still running when the close began would otherwise hold it for
    // the 72 s keep-alive timeout.
    forceCloseConnections: true,
    // Bad URLs (undecodable escapes, oversized parameters) answer like any other bad input.
    frameworkErrors: (error, _request, reply) => sendInputError(reply, 400, 'url', error.message),
  });
  installErrorHandling(app);
  // The API speaks JSON only: a text/plain body is refused (415), not parsed as a string.
  app.removeContentTypeParser('text/plain');
  await app.register(fastifyWebsocket);
  await app.register(topicRoutes(deps.hub));
  const read = consistentReads(deps.readSide, deps.node);
  await app.register(taskRoutes(deps.node, read, deps.clock));
  await app.register(applyRoutes(deps.node));
  await app.register(readRoutes(read, deps.clock));
  await app.register(streamRoutes(deps.readSide, deps.clock, deps.stream));
  await app.register(readModelRoutes(deps.readSide, read, deps.store));
  await app.register(eventRoutes(deps.store));
  await app.register(clusterRoutes(deps.node));

  const registry = nodeMetrics(deps.node, deps.hub, deps.clock, deps.readSide ? () => read('metrics', {}) : null);
  const openapi = openApiDocument(deps.version);
  app.get('/healthz', async () => ({ status: 'ok', node: deps.node.nodeId }));
  app.get('/readyz', async (_request, reply) => {
    // A node cut off from ZooKeeper fires nothing (design §3.4): not ready, though it still answers reads.
    const connection = deps.node.cluster()?.connection;
    const problem =
      deps.node.storeProblem ??
      (connection && connection !== 'connected' ? `coordination is ${connection}: this node fires nothing` : null);
    const ready = deps.node.status === 'running' && problem === null;
    return reply
      .status(ready ? 200 : 503)
      .send({ ready, status: deps.node.status, node: deps.node.nodeId, ...(problem ? { problem } : {}) });
  });
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  app.get('/openapi.json', async () => openapi);
  app.get('/api/subscribers', async () => ({ stats: deps.hub.stats(), consumers: deps.hub.consumers() }));
  // The log's invariants, checked over the whole log; `ok` says whether it is clean.
  // A scan of the whole log: in the read side's process when there is one, never on the firing thread.
  app.get('/api/verify', async () => (deps.readSide ? read('verify', {}) : verifyStore(deps.store)));
  return app;
};
