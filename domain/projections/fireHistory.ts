import type { TaskEvent } from '../task/events.js';
import { toMillis } from '../time/instant.js';

/**
 * Read model of a task's fires, folded from its stream: when each fire was due, when and where it
 * fired, how late, how it ended. Pure reducer, so the same code serves the API (over the tail of a
 * stream) and audit tools (over a whole log).
 */
export type FireStatus = 'in-flight' | 'retrying' | 'succeeded' | 'failed' | 'timed-out' | 'cancelled';

export type FireRecord = {
  fireId: string;
  taskId: string;
  scheduledAt: string;
  firedAt: string;
  node: string;
  epoch: number;
  trigger: string;
  attempts: number;
  status: FireStatus;
  /** First attempt's firedAt − scheduledAt. */
  latenessMs: number;
  outcomeAt: string | null;
  /** From the first attempt's fire to the final outcome. */
  durationMs: number | null;
  message: string | null;
  details: unknown[];
};

/** Ticks that did not fire: skipped by the overlap policy or handled by the misfire policy. */
export type GapRecord = {
  kind: 'skipped' | 'misfired';
  after: string;
  until: string;
  count: number | null;
  action: string;
  policy: string;
  at: string;
  /** `overload`: missed because the node had more due work than it could do. */
  cause?: 'overload';
};

export type FireHistory = { fires: Map<string, FireRecord>; gaps: GapRecord[] };

export const emptyFireHistory = (): FireHistory => ({ fires: new Map(), gaps: [] });

/**
 * Mutates and returns `history`: it is built once per query, so copying per event would only cost.
 * A fire is shown from its first attempt: the later attempts and outcomes of a fire whose first
 * attempt is not in the events folded (retention truncated it, or a tail read began after it) are left out.
 */
export const foldFireHistory = (history: FireHistory, event: TaskEvent): FireHistory => {
  switch (event.type) {
    case 'TaskFired': {
      const d = event.data;
      const existing = history.fires.get(d.fireId);
      if (existing) {
        existing.attempts = Math.max(existing.attempts, d.attempt);
        existing.status = 'in-flight';
      } else if (d.attempt === 1) {
        history.fires.set(d.fireId, {
          fireId: d.fireId,
          taskId: d.taskId,
          scheduledAt: d.scheduledAt,
          firedAt: d.firedAt,
          node: d.node,
          epoch: d.epoch,
          trigger: d.trigger,
          attempts: d.attempt,
          status: 'in-flight',
          latenessMs: toMillis(d.firedAt) - toMillis(d.scheduledAt),
          outcomeAt: null,
          durationMs: null,
          message: null,
          details: [],
        });
      }
      return history;
    }
    case 'TaskSucceeded':
    case 'TaskFailed': {
      const fire = history.fires.get(event.data.fireId);
      if (!fire) return history;
      const final = event.type === 'TaskSucceeded' || event.data.willRetryAt === undefined;
      fire.status =
        event.type === 'TaskSucceeded'
          ? 'succeeded'
          : !final
            ? 'retrying'
            : event.data.reason === 'timeout'
              ? 'timed-out'
              : event.data.reason === 'cancelled'
                ? 'cancelled'
                : 'failed';
      fire.message = event.type === 'TaskFailed' ? event.data.message : null;
      fire.details = event.data.details;
      if (final) {
        fire.outcomeAt = event.data.at;
        fire.durationMs = toMillis(event.data.at) - toMillis(fire.firedAt);
      }
      return history;
    }
    case 'TaskSkipped':
      history.gaps.push({
        kind: 'skipped',
        after: event.data.after,
        until: event.data.until,
        count: event.data.count,
        action: 'skipped',
        policy: event.data.policy,
        at: event.data.at,
      });
      return history;
    case 'TaskMisfired':
      history.gaps.push({
        kind: 'misfired',
        after: event.data.after,
        until: event.data.until,
        count: event.data.count,
        action: event.data.action,
        policy: event.data.policy,
        at: event.data.at,
        ...(event.data.cause ? { cause: event.data.cause } : {}),
      });
      return history;
    default:
      return history;
  }
};
