/**
 * What `POST /api/tasks/apply` (applyRoutes.ts) promises its callers, without its runtime: the CLI
 * imports this at start-up.
 */

/** Most task documents one request takes (about 30 MB of JSON); `kairos apply` sends more in several. */
export const MAX_APPLY_TASKS = 100_000;

export type ApplyResult = 'created' | 'updated' | 'unchanged' | 'refused';

export type AppliedTask = {
  id: string;
  result: ApplyResult;
  /** Why a task was refused, as the API's errors read: `{code, message, details}`. */
  error?: { code: string; message: string; details?: unknown };
};

export type ApplyAnswer = Record<ApplyResult, number> & { tasks: AppliedTask[] };
