import { z } from 'zod';
import { TaskSpec } from '../../domain/task/spec.js';
import {
  AuditQuery,
  BoardQuery,
  ChangesQuery,
  ClusterHistoryQuery,
  ExplainQuery,
  FiresQuery,
  HistoryQuery,
  StatsQuery,
  StreamQuery,
  TaskAtQuery,
} from './readQueries.js';
import { READ_MODEL_NAMES } from '../projections/readModels.js';
import { MAX_APPLY_TASKS } from './applyContract.js';

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

/** The query parameters a route accepts, generated from the zod schema that validates them. */
const queryParams = (schema: z.ZodType) => {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, object>;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, schema]) => ({
    name,
    in: 'query',
    required: json.required?.includes(name) ?? false,
    schema,
  }));
};
const TIME =
  'Times (`since`, `until`, `at`, `from`, `to`) are ISO-8601 with an offset, or a duration meaning that long ago (`15m`, `24h`, `7d`). Lists are comma-separated. Pages: pass `next` as `cursor`.';
const page = (summary: string, schema: z.ZodType, body: string) => ({
  get: {
    summary,
    description: TIME,
    parameters: queryParams(schema),
    responses: { '200': { description: body }, ...errors },
  },
});
/** The optional body of every operator action: why (recorded in the event, shown by the audit). */
const reasonBody = json({ type: 'object', properties: { reason: { type: 'string', maxLength: 500 } } });
const action = (summary: string) => ({
  post: {
    summary,
    parameters: idParam,
    requestBody: { required: false, ...reasonBody },
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
        summary: 'The task board: filter, search, sort, a page at a time (read side); `at`: as it was then',
        description: TIME,
        parameters: queryParams(BoardQuery(0)),
        responses: { '200': { description: '`{total, tasks, next}`; with `at`: `{at, tasks, next}`' }, ...errors },
      },
    },
    '/api/tasks/apply': {
      post: {
        summary:
          'Create or update many tasks at once (idempotent); every document is validated before anything is written',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['tasks'],
                properties: {
                  tasks: { type: 'array', items: ref('TaskSpec'), maxItems: MAX_APPLY_TASKS },
                  reason: { type: 'string', maxLength: 500 },
                },
              },
            },
          },
        },
        responses: {
          '200': {
            description:
              '`{created, updated, unchanged, refused, tasks: [{id, result, error?}]}`: one result per task; `refused` ones carry `{code, message, details}`',
          },
          ...errors,
        },
      },
    },
    '/api/tasks/{id}': {
      get: {
        summary: 'Get a task (now, or as it was at `at`, folded from the log)',
        description: TIME,
        parameters: [...idParam, ...queryParams(TaskAtQuery(0))],
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
        summary: 'Fires of a task, newest first, with lateness and outcome (fire index)',
        parameters: [...idParam, ...queryParams(HistoryQuery)],
        responses: { '200': { description: '`{taskId, fires, gaps}`' }, ...errors },
      },
    },
    '/api/tasks/{id}/changes': {
      get: {
        summary: "The task's definition history, oldest first, each change as a diff (audit index)",
        parameters: [...idParam, ...queryParams(ChangesQuery)],
        responses: { '200': { description: '`{taskId, changes, next}`' }, ...errors },
      },
    },
    '/api/tasks/{id}/explain': {
      get: {
        summary: 'Why the task did or did not fire around `at`, with the events that say so',
        description: TIME,
        parameters: [...idParam, ...queryParams(ExplainQuery(0))],
        responses: { '200': { description: '`{taskId, at, tick, verdict, summary, details, evidence}`' }, ...errors },
      },
    },
    '/api/fires': page(
      'Fire attempts across all tasks, newest fired first (fire index)',
      FiresQuery(0),
      '`{fires, next}`',
    ),
    '/api/audit': page('Who changed which task, when, where and why, newest first', AuditQuery(0), '`{entries, next}`'),
    '/api/stats': page(
      'Fires, outcomes, skips, misfires, lateness and duration per minute, hour or day, per task or overall',
      StatsQuery(0),
      '`{task, step, from, to, points, total}`',
    ),
    '/api/cluster/history': page(
      'Joins, leaves, leader changes, slot moves and takeovers, newest first',
      ClusterHistoryQuery(0),
      '`{entries, next}`',
    ),
    '/api/stream': {
      get: {
        summary: 'Live feed (Server-Sent Events): lifecycle events (`id` = log position) and board rows',
        description:
          'Resume with the `Last-Event-ID` header (or `after`). A comment line every heartbeat; a subscriber that reads too slowly gets `event: error` (`slow_consumer`) and is disconnected.',
        parameters: [
          ...queryParams(StreamQuery),
          { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string', pattern: '^\\d+$' } },
        ],
        responses: { '200': { description: '`text/event-stream`' }, ...errors },
      },
    },
    '/api/read-models': {
      get: {
        summary: "Where each read model stands: its checkpoint, the log's head, a replay under way",
        responses: { '200': { description: '`{position, head, lag, undecodable, models, replay, feeds}`' } },
      },
    },
    '/api/read-models/replay': {
      post: {
        summary: 'Rebuild read models from the log (or `check`: rebuild into a scratch database and compare)',
        requestBody: json({
          type: 'object',
          properties: {
            models: { type: 'array', items: { enum: [...READ_MODEL_NAMES] } },
            from: { type: 'integer', minimum: 0 },
            check: { type: 'boolean' },
          },
        }),
        responses: {
          '200': { description: 'NDJSON: `{"progress": …}` lines, then `{"result": …}` or `{"error": …}`' },
          ...errors,
        },
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
