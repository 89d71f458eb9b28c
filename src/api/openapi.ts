import { z } from 'zod';
import { TaskSpec } from '../../domain/task/spec.js';

const errorSchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
};

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errors = {
  '400': { description: 'Invalid input; `details.issues` names each bad field', ...json(ref('Error')) },
  '404': { description: 'No such task', ...json(ref('Error')) },
  '409': { description: 'Conflicts with the current state', ...json(ref('Error')) },
};
const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];
const action = (summary: string) => ({
  post: {
    summary,
    parameters: idParam,
    responses: { '200': { description: 'The task after the action', ...json(ref('Task')) }, ...errors },
  },
});

/**
 * `/openapi.json`. The task document's schema is generated from the zod schema that validates it, so
 * the body contract cannot drift; the routes and their query parameters are listed here by hand.
 */
export const openApiDocument = (version: string) => ({
  openapi: '3.1.0',
  info: { title: 'Kairos', version, description: 'Distributed, event-sourced cron scheduler' },
  components: {
    schemas: {
      TaskSpec: z.toJSONSchema(TaskSpec, { io: 'input', unrepresentable: 'any' }),
      Task: {
        type: 'object',
        description: 'A task: its spec and its current state (status, owner, next fire, last outcome, fires in flight)',
      },
      Error: errorSchema,
    },
  },
  paths: {
    '/api/tasks': {
      post: {
        summary: 'Create a task',
        requestBody: json(ref('TaskSpec')),
        responses: { '201': { description: 'Created', ...json(ref('Task')) }, ...errors },
      },
      get: {
        summary: 'List tasks',
        parameters: [
          { name: 'status', in: 'query', schema: { enum: ['active', 'paused', 'deleted', 'all'] } },
          { name: 'limit', in: 'query', schema: { type: 'integer' } },
          { name: 'offset', in: 'query', schema: { type: 'integer' } },
        ],
        responses: { '200': { description: 'Tasks', ...json({ type: 'object' }) } },
      },
    },
    '/api/tasks/{id}': {
      get: {
        summary: 'Get a task',
        parameters: idParam,
        responses: { '200': { description: 'The task', ...json(ref('Task')) }, ...errors },
      },
      put: {
        summary: 'Create or update a task (idempotent)',
        parameters: idParam,
        requestBody: json(ref('TaskSpec')),
        responses: { '200': { description: 'Updated or unchanged' }, '201': { description: 'Created' }, ...errors },
      },
      delete: {
        summary: 'Delete a task (soft; restorable)',
        parameters: idParam,
        responses: { '200': { description: 'The deleted task', ...json(ref('Task')) }, ...errors },
      },
    },
    '/api/tasks/{id}/pause': action('Pause a task'),
    '/api/tasks/{id}/resume': action('Resume a paused task'),
    '/api/tasks/{id}/restore': action('Restore a deleted task'),
    '/api/tasks/{id}/trigger': {
      post: {
        summary: 'Fire a task now',
        parameters: idParam,
        responses: { '202': { description: 'Fired: `{fireId, task}`' }, ...errors },
      },
    },
    '/api/tasks/{id}/history': {
      get: {
        summary: 'Fires of a task, newest first, with lateness and outcome',
        parameters: [...idParam, { name: 'limit', in: 'query', schema: { type: 'integer' } }],
        responses: { '200': { description: '`{taskId, fires, gaps}`' }, ...errors },
      },
    },
    '/api/events': {
      get: {
        summary: 'The raw event log',
        parameters: [
          { name: 'from', in: 'query', schema: { type: 'integer' }, description: 'first position (inclusive)' },
          { name: 'limit', in: 'query', schema: { type: 'integer' } },
        ],
        responses: {
          '200': { description: '`{events: [{position, id, stream, revision, type, data, metadata, time}], next}`' },
          ...errors,
        },
      },
    },
    '/api/subscribe': {
      get: {
        summary: 'WebSocket for topic subscribers (see docs/subscribers.md)',
        responses: { '101': { description: 'Switching protocols' } },
      },
    },
    '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'The process serves requests' } } } },
    '/readyz': {
      get: {
        summary: 'Readiness',
        responses: { '200': { description: 'Log replayed, leases held' }, '503': { description: 'Not ready' } },
      },
    },
    '/metrics': {
      get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text/plain exposition' } } },
    },
    '/api/subscribers': {
      get: {
        summary: 'Connected topic consumers and delivery counters',
        responses: { '200': { description: '`{stats, consumers}`' } },
      },
    },
    '/api/cluster': {
      get: {
        summary: 'The cluster as this node sees it: members, slots and tasks per node, connection state',
        responses: {
          '200': {
            description:
              '`{mode, nodeId, connection, slotCount, members, heldSlots, leader, unplaceable, slotsPerNode, tasksPerNode}`',
          },
        },
      },
    },
    '/api/verify': {
      get: {
        summary: "Check the log's invariants: no tick fired twice or lost, epochs only grow, no orphaned fire",
        responses: { '200': { description: '`{ok, tasks, events, fires, inFlight, violations, counts}`' } },
      },
    },
    '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
  },
});
