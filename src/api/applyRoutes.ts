import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  ErrorCode,
  ValidationError,
  isKairosError,
  isValidationError,
  parseOrThrow,
  type FieldIssue,
} from '../../domain/errors/index.js';
import { TaskSpec, duplicateIdIssues, sameSpec } from '../../domain/task/spec.js';
import { withKeptSecret } from '../../domain/task/view.js';
import type { SchedulerNode } from '../node/schedulerNode.js';
import { MAX_APPLY_TASKS, type AppliedTask, type ApplyAnswer, type ApplyResult } from './applyContract.js';
import { Reason, contextOf } from './taskRoutes.js';

const APPLY_BODY_LIMIT = 64 * 1024 * 1024;

const ApplyBody = z.object({
  tasks: z
    .array(z.unknown(), { error: 'must be an array of task documents' })
    .min(1, 'must list at least one task')
    .max(MAX_APPLY_TASKS, `must list at most ${MAX_APPLY_TASKS} tasks (send more in several requests)`),
  reason: Reason,
});

/** Every document validated, as a task spec (secrets the document left out kept from the task it updates). */
const specsOf = (node: SchedulerNode, documents: readonly unknown[]): TaskSpec[] => {
  const issues: FieldIssue[] = [];
  const specs: TaskSpec[] = [];
  const ids: [number, string][] = [];
  documents.forEach((document, i) => {
    const path = `tasks[${i}]`;
    if (typeof document !== 'object' || document === null || Array.isArray(document)) {
      issues.push({ path, message: 'must be a task document (an object)' });
      return;
    }
    const id = (document as { id?: unknown }).id;
    const kept = typeof id === 'string' ? node.get(id)?.state.spec : undefined;
    try {
      const spec = parseOrThrow(TaskSpec, withKeptSecret(document as Record<string, unknown>, kept), path);
      ids.push([i, spec.id]);
      specs.push(spec);
    } catch (err) {
      if (!isValidationError(err)) throw err;
      issues.push(...err.issues);
    }
  });
  issues.push(...duplicateIdIssues(ids));
  if (issues.length > 0) throw new ValidationError(issues);
  return specs;
};

/**
 * `POST /api/tasks/apply` — `{tasks: [...], reason?}`: declares many tasks at once, as `PUT
 * /api/tasks/:id` does one (created, updated, or unchanged when the spec is the same). Every
 * document is validated before anything is written: one bad document refuses the request (400, each
 * problem named `tasks[i].field`) and changes nothing. Then each task is decided on its own, all at
 * once, so their events share the store's group commits; a task the node cannot change (say, it is
 * deleted) is `refused` with the reason, and the others go ahead.
 */
export const applyRoutes = (node: SchedulerNode) => async (app: FastifyInstance) => {
  app.post('/api/tasks/apply', { bodyLimit: APPLY_BODY_LIMIT }, async (request) => {
    const { tasks, reason } = parseOrThrow(ApplyBody, request.body);
    const specs = specsOf(node, tasks);
    const ctx = contextOf(request.headers);
    const applied = await Promise.all(
      specs.map(async (spec): Promise<AppliedTask> => {
        const before = node.get(spec.id);
        try {
          if (!before) {
            await node.createTask(spec, ctx, reason);
            return { id: spec.id, result: 'created' };
          }
          // Judged on the spec, as PUT does: a fire appended meanwhile moves the revision too.
          const unchanged = before.state.spec !== null && sameSpec(before.state.spec, spec);
          await node.updateTask(spec, ctx, reason);
          return { id: spec.id, result: unchanged ? 'unchanged' : 'updated' };
        } catch (err) {
          const error = isKairosError(err)
            ? err.toJSON()
            : { code: ErrorCode.internal, message: 'internal error; see the node log' };
          if (!isKairosError(err)) request.log.error({ err, taskId: spec.id }, 'apply: unexpected error');
          return { id: spec.id, result: 'refused', error };
        }
      }),
    );
    const count = (result: ApplyResult) => applied.filter((a) => a.result === result).length;
    const answer: ApplyAnswer = {
      created: count('created'),
      updated: count('updated'),
      unchanged: count('unchanged'),
      refused: count('refused'),
      tasks: applied,
    };
    return answer;
  });
};
