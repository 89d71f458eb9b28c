import { nextTickAt } from './decide.js';
import { lifecycleOf } from './machine.js';
import type { TaskSpec } from './spec.js';
import { toIso } from '../time/instant.js';
import type { TaskState } from './state.js';
import { SECRET_SET, redactSpec } from '../projections/redaction.js';

/** A task as the API shows it: its definition plus what the node knows of its life. */
export type TaskView = ReturnType<typeof taskViewOf>;

/** Beyond ±8.64e15 ms `Date` has no rendering; such a time (from an unbounded spec in an old log) shows as null. */
const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined || !(Math.abs(ms) <= 8.64e15) ? null : toIso(ms);

/**
 * A document read from a view and sent back (`kairos task update` does this) carries the marker, not
 * the secret: the marker means "keep the secret the task has".
 */
export const withKeptSecret = (
  body: Record<string, unknown>,
  current: TaskSpec | null | undefined,
): Record<string, unknown> => {
  const http = (body.target as { http?: Record<string, unknown> } | undefined)?.http;
  if (http?.secret !== SECRET_SET) return body;
  const kept = current && 'http' in current.target ? current.target.http.secret : undefined;
  return { ...body, target: { http: { ...http, secret: kept } } };
};

/** A task as the node holds it (a `TaskRecord`) or as the read side stores it (a board row). */
type FoldedTask = { state: TaskState; revision: bigint | number };

export const taskViewOf = (record: FoldedTask, wakeAt?: number) => {
  const s = record.state;
  // The statechart's value, flattened for the view: `{active: 'running'}` reads as `running`.
  const value = lifecycleOf(s);
  const lifecycle = typeof value === 'string' ? value : (Object.values(value)[0] as string);
  return {
    id: s.taskId,
    name: s.spec?.name ?? s.taskId,
    status: s.status,
    lifecycle,
    spec: s.spec && redactSpec(s.spec),
    revision: Number(record.revision),
    owner: s.owner,
    nextFireAt: iso(nextTickAt(s)),
    nextWakeAt: iso(wakeAt),
    runs: s.runs,
    lastFire: s.lastFire && {
      ...s.lastFire,
      scheduledAt: toIso(s.lastFire.scheduledAt),
      firedAt: toIso(s.lastFire.firedAt),
    },
    lastOutcome: s.lastOutcome && { ...s.lastOutcome, at: toIso(s.lastOutcome.at) },
    failureStreak: s.failureStreak,
    inFlight: s.inFlight.map((f) => ({
      fireId: f.fireId,
      attempt: f.attempt,
      trigger: f.trigger,
      scheduledAt: toIso(f.scheduledAt),
      firedAt: toIso(f.firedAt),
      deadline: iso(f.deadline),
      retryAt: iso(f.retryAt),
    })),
  };
};
