import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NotFoundError, ValidationError, parseOrThrow } from '../../domain/errors/index.js';
import { TaskId, TaskSpec, sameSpec } from '../../domain/task/spec.js';
import { taskViewOf, withKeptSecret } from '../../domain/task/view.js';
import type { Clock } from '../clock/clock.js';
import type { CommandContext, SchedulerNode } from '../node/schedulerNode.js';
import { BoardQuery, ChangesQuery, ExplainQuery, HistoryQuery, TaskAtQuery } from './readQueries.js';
import type { ReadQuery } from './readRoutes.js';
import { bodyObject } from './validation.js';

const IdParams = z.object({ id: TaskId });
/** Why an operator acts: recorded in the event, shown by the audit. */
export const Reason = z.string().max(500, 'must be at most 500 characters').optional();
const ReasonBody = z.object({ reason: Reason }).optional();

/** The caller, as recorded in event metadata: `X-Kairos-Actor` when given (the CLI sends the OS user), else `anonymous`. */
export const contextOf = (headers: Record<string, unknown>): CommandContext => {
  const actor = headers['x-kairos-actor'];
  const correlation = headers['x-correlation-id'];
  return {
    actor: typeof actor === 'string' && actor.length > 0 && actor.length <= 200 ? `user:${actor}` : 'anonymous',
    ...(typeof correlation === 'string' && correlation.length <= 200 ? { correlationId: correlation } : {}),
  };
};

/** A task document with the operator's `reason` beside it (not part of the document). */
const documentAndReason = (body: unknown): { document: Record<string, unknown>; reason: string | undefined } => {
  const { reason, ...document } = bodyObject(body, 'a task document');
  return { document, reason: parseOrThrow(Reason, reason, 'reason') };
};

export const taskRoutes = (node: SchedulerNode, read: ReadQuery, clock: Clock) => async (app: FastifyInstance) => {
  const view = (id: string) => {
    const record = node.get(id);
    if (!record) throw new NotFoundError('task', id);
    return taskViewOf(record, node.wakeAt(id));
  };
  const idOf = (params: unknown): string => parseOrThrow(IdParams, params).id;
  const existing = (params: unknown): string => {
    const id = idOf(params);
    if (!node.get(id)) throw new NotFoundError('task', id);
    return id;
  };
  const reasonOf = (body: unknown): string | undefined => parseOrThrow(ReasonBody, body, 'body')?.reason;

  app.post('/api/tasks', async (request, reply) => {
    const { document, reason } = documentAndReason(request.body);
    const spec = parseOrThrow(TaskSpec, document);
    await node.createTask(spec, contextOf(request.headers), reason);
    return reply.status(201).header('location', `/api/tasks/${spec.id}`).send(view(spec.id));
  });

  /** The board from the read side: filter, search, sort, a page at a time; `at` shows it as it was then. */
  app.get('/api/tasks', async (request) => {
    const { at, ...q } = parseOrThrow(BoardQuery(clock.now()), request.query);
    return at === undefined ? read('board', q) : read('boardAt', { ...q, at });
  });

  /** The task now, as this node holds it; with `at`, as it was then (folded from the log). */
  app.get('/api/tasks/:id', async (request) => {
    const id = idOf(request.params);
    const { at } = parseOrThrow(TaskAtQuery(clock.now()), request.query);
    return at === undefined ? view(id) : read('taskAt', { task: id, at });
  });

  /** Upsert: creates the task when absent (201), updates it otherwise (200); `result` says which, or `unchanged`. */
  app.put('/api/tasks/:id', async (request, reply) => {
    const id = idOf(request.params);
    const { document, reason } = documentAndReason(request.body);
    const spec = parseOrThrow(TaskSpec, { id, ...withKeptSecret(document, node.get(id)?.state.spec) });
    if (spec.id !== id) throw new ValidationError([{ path: 'id', message: `must be '${id}' (the id in the path)` }]);
    const ctx = contextOf(request.headers);
    const before = node.get(id);
    if (!before) {
      await node.createTask(spec, ctx, reason);
      return reply.status(201).send({ result: 'created', task: view(id) });
    }
    // Judged on the spec, not on the revision: a fire appended meanwhile moves the revision too.
    const unchanged = before.state.spec !== null && sameSpec(before.state.spec, spec);
    await node.updateTask(spec, ctx, reason);
    return { result: unchanged ? 'unchanged' : 'updated', task: view(id) };
  });

  app.delete('/api/tasks/:id', async (request) => {
    const id = idOf(request.params);
    await node.deleteTask(id, contextOf(request.headers), reasonOf(request.body));
    return view(id);
  });

  app.post('/api/tasks/:id/pause', async (request) => {
    const id = idOf(request.params);
    await node.pauseTask(id, contextOf(request.headers), reasonOf(request.body));
    return view(id);
  });
  app.post('/api/tasks/:id/resume', async (request) => {
    const id = idOf(request.params);
    await node.resumeTask(id, contextOf(request.headers), reasonOf(request.body));
    return view(id);
  });
  app.post('/api/tasks/:id/restore', async (request) => {
    const id = idOf(request.params);
    await node.restoreTask(id, contextOf(request.headers), reasonOf(request.body));
    return view(id);
  });
  app.post('/api/tasks/:id/trigger', async (request, reply) => {
    const id = existing(request.params);
    const fireId = await node.triggerTask(id, contextOf(request.headers), reasonOf(request.body));
    return reply.status(202).send({ fireId, task: view(id) });
  });

  /** The newest fires, newest first, from the fire index (exact, however many events a fire took). */
  app.get('/api/tasks/:id/history', async (request) => {
    const task = existing(request.params);
    return read('history', { task, ...parseOrThrow(HistoryQuery, request.query) });
  });

  /** The definition's history, oldest first, each change with what it changed. */
  app.get('/api/tasks/:id/changes', async (request) => {
    const task = existing(request.params);
    return read('changes', { task, ...parseOrThrow(ChangesQuery, request.query) });
  });

  /** Why the task did or did not fire around `at`, with the events that say so. */
  app.get('/api/tasks/:id/explain', async (request) => {
    const task = idOf(request.params);
    return read('explain', { task, ...parseOrThrow(ExplainQuery(clock.now()), request.query) });
  });
};
