import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NotFoundError, ValidationError, parseOrThrow } from '../../domain/errors/index.js';
import { emptyFireHistory, foldFireHistory } from '../../domain/projections/fireHistory.js';
import { taskStreamOf } from '../../domain/task/events.js';
import { TaskId, TaskSpec, sameSpec } from '../../domain/task/spec.js';
import { decodeTaskEvent } from '../node/taskCodec.js';
import type { CommandContext, SchedulerNode } from '../node/schedulerNode.js';
import type { EventStore } from '../store/eventStore.js';
import { taskViewOf, withKeptSecret } from './taskView.js';
import { QueryInt, bodyObject } from './validation.js';

const IdParams = z.object({ id: TaskId });
const ListQuery = z.object({
  status: z.enum(['active', 'paused', 'deleted', 'all']).default('all'),
  limit: QueryInt(1, 10_000).default(1_000),
  offset: QueryInt(0, Number.MAX_SAFE_INTEGER).default(0),
});
const HistoryQuery = z.object({ limit: QueryInt(1, 10_000).default(100) });
const ReasonBody = z.object({ reason: z.string().max(500).optional() }).optional();

/** The caller, as recorded in event metadata: `X-Kairos-Actor` when given (the CLI sends the OS user). */
export const contextOf = (headers: Record<string, unknown>): CommandContext => {
  const actor = headers['x-kairos-actor'];
  const correlation = headers['x-correlation-id'];
  return {
    actor: typeof actor === 'string' && actor.length > 0 && actor.length <= 200 ? `user:${actor}` : 'user:api',
    ...(typeof correlation === 'string' && correlation.length <= 200 ? { correlationId: correlation } : {}),
  };
};

export const taskRoutes = (node: SchedulerNode, store: EventStore) => async (app: FastifyInstance) => {
  const view = (id: string) => {
    const record = node.get(id);
    if (!record) throw new NotFoundError('task', id);
    return taskViewOf(record, node.wakeAt(id));
  };
  const idOf = (params: unknown): string => parseOrThrow(IdParams, params).id;

  app.post('/api/tasks', async (request, reply) => {
    const spec = parseOrThrow(TaskSpec, bodyObject(request.body, 'a task document'));
    await node.createTask(spec, contextOf(request.headers));
    return reply.status(201).header('location', `/api/tasks/${spec.id}`).send(view(spec.id));
  });

  app.get('/api/tasks', async (request) => {
    const q = parseOrThrow(ListQuery, request.query);
    const all = [...node.tasks()].filter(
      (r) => r.state.status !== 'absent' && (q.status === 'all' || r.state.status === q.status),
    );
    all.sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
    return {
      total: all.length,
      tasks: all.slice(q.offset, q.offset + q.limit).map((r) => taskViewOf(r, node.wakeAt(r.taskId))),
    };
  });

  app.get('/api/tasks/:id', async (request) => view(idOf(request.params)));

  /** Upsert: creates the task when absent (201), updates it otherwise (200); `result` says which, or `unchanged`. */
  app.put('/api/tasks/:id', async (request, reply) => {
    const id = idOf(request.params);
    const body = withKeptSecret(bodyObject(request.body, 'a task document'), node.get(id)?.state.spec);
    const spec = parseOrThrow(TaskSpec, { id, ...body });
    if (spec.id !== id) throw new ValidationError([{ path: 'id', message: `must be '${id}' (the id in the path)` }]);
    const ctx = contextOf(request.headers);
    const before = node.get(id);
    if (!before) {
      await node.createTask(spec, ctx);
      return reply.status(201).send({ result: 'created', task: view(id) });
    }
    // Judged on the spec, not on the revision: a fire appended meanwhile moves the revision too.
    const unchanged = before.state.spec !== null && sameSpec(before.state.spec, spec);
    await node.updateTask(spec, ctx);
    return { result: unchanged ? 'unchanged' : 'updated', task: view(id) };
  });

  app.delete('/api/tasks/:id', async (request) => {
    const id = idOf(request.params);
    await node.deleteTask(id, contextOf(request.headers), parseOrThrow(ReasonBody, request.body, 'body')?.reason);
    return view(id);
  });

  app.post('/api/tasks/:id/pause', async (request) => {
    const id = idOf(request.params);
    await node.pauseTask(id, contextOf(request.headers), parseOrThrow(ReasonBody, request.body, 'body')?.reason);
    return view(id);
  });
  app.post('/api/tasks/:id/resume', async (request) => {
    const id = idOf(request.params);
    await node.resumeTask(id, contextOf(request.headers));
    return view(id);
  });
  app.post('/api/tasks/:id/restore', async (request) => {
    const id = idOf(request.params);
    await node.restoreTask(id, contextOf(request.headers));
    return view(id);
  });
  app.post('/api/tasks/:id/trigger', async (request, reply) => {
    const id = idOf(request.params);
    if (!node.get(id)) throw new NotFoundError('task', id);
    const fireId = await node.triggerTask(id, contextOf(request.headers));
    return reply.status(202).send({ fireId, task: view(id) });
  });

  /** The newest fires, newest first, from the tail of the task's stream. */
  app.get('/api/tasks/:id/history', async (request) => {
    const id = idOf(request.params);
    const { limit } = parseOrThrow(HistoryQuery, request.query);
    if (!node.get(id)) throw new NotFoundError('task', id);
    // A fire is at most a handful of events; read enough of the tail for `limit` fires.
    const tail = await store.readStream(taskStreamOf(id), { direction: 'backwards', maxCount: limit * 4 + 16 });
    const history = emptyFireHistory();
    for (const recorded of tail.reverse()) {
      const decoded = decodeTaskEvent(recorded);
      if (decoded.ok) foldFireHistory(history, decoded.event);
    }
    const fires = [...history.fires.values()].reverse().slice(0, limit);
    return { taskId: id, fires, gaps: history.gaps.reverse().slice(0, limit) };
  });
};
