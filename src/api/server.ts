import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { SchedulerNode } from '../node/schedulerNode.js';
import type { EventStore } from '../store/eventStore.js';
import { topicRoutes } from '../targets/topic/topicRoutes.js';
import type { TopicHub } from '../targets/topic/topicHub.js';
import { installErrorHandling } from './errorHandler.js';
import { eventRoutes } from './eventRoutes.js';
import { nodeMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { taskRoutes } from './taskRoutes.js';

export type ApiDeps = { node: SchedulerNode; store: EventStore; hub: TopicHub; logger: Logger; version: string };

/** The node's HTTP surface (design §7). Routes validate with zod and answer errors as `{code, message, details}`. */
export const buildServer = async (deps: ApiDeps): Promise<FastifyInstance> => {
  const app = Fastify({ loggerInstance: deps.logger as FastifyBaseLogger, disableRequestLogging: true, bodyLimit: 1_048_576 });
  installErrorHandling(app);
  await app.register(fastifyWebsocket);
  await app.register(topicRoutes(deps.hub));
  await app.register(taskRoutes(deps.node, deps.store));
  await app.register(eventRoutes(deps.store));

  const registry = nodeMetrics(deps.node, deps.hub);
  const openapi = openApiDocument(deps.version);
  app.get('/healthz', async () => ({ status: 'ok', node: deps.node.nodeId }));
  app.get('/readyz', async (_request, reply) => {
    const ready = deps.node.status === 'running';
    return reply.status(ready ? 200 : 503).send({ ready, status: deps.node.status, node: deps.node.nodeId });
  });
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  app.get('/openapi.json', async () => openapi);
  app.get('/api/subscribers', async () => ({ stats: deps.hub.stats(), consumers: deps.hub.consumers() }));
  return app;
};
