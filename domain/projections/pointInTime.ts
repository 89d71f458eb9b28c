import type { TaskHistory } from '../task/capture.js';
import type { DefinitionChange, OwnershipChange } from '../task/events.js';
import type { TaskSpec } from '../task/spec.js';
import { toMillis } from '../time/instant.js';
import { emptyRows, foldReadModel } from './foldReadModel.js';
import type { ProjectedEvent } from './readModel.js';
import { taskBoard, type TaskBoardRow } from './taskBoard.js';

/**
 * Point-in-time state (`GET /api/tasks/:id?at=`, `kairos state --at`): the log folded up to an instant.
 * It folds through the task board's own reducer, so "as it was" reads exactly like "as it is": the
 * definition in force, status, owner, who paused it and why, last fire and outcome.
 */

const board = taskBoard();

/**
 * Each task's board row as of `at`: a stream's events are folded in order up to the first one that
 * happened after `at` (a later event never folds in ahead of an earlier one). Tasks whose first event
 * is after `at` did not exist yet and have no row.
 */
export const boardAt = (events: Iterable<ProjectedEvent>, at: number): Map<string, TaskBoardRow> => {
  const stopped = new Set<string>();
  const rows = emptyRows(board);
  const before = function* () {
    for (const e of events) {
      if (e.kind !== 'task' || stopped.has(e.taskId)) continue;
      if (e.occurredAt > at) {
        stopped.add(e.taskId);
        continue;
      }
      yield e;
    }
  };
  foldReadModel(board, before(), rows);
  return rows.tasks;
};

/** The time after which the log need not be read for `boardAt(at)`: clocks of nodes differ a little. */
export const CLOCK_SLACK_MS = 60_000;

/** What a capture's history says of a task at an instant its stream no longer holds the events of (retention). */
export type RecalledState = {
  spec: TaskSpec | null;
  status: 'absent' | 'active' | 'paused' | 'deleted';
  owner: { node: string; epoch: number } | null;
  /** The definition and ownership changes in force then (the last of each kind at or before `at`). */
  lastChange: DefinitionChange | null;
  lastOwnership: OwnershipChange | null;
};

/**
 * The definition, status and owner at `at` from a capture's history: exact for those three, silent on
 * fires (the events that recorded them were truncated).
 */
export const recallFromHistory = (history: TaskHistory, at: number): RecalledState => {
  let spec: TaskSpec | null = null;
  let status: RecalledState['status'] = 'absent';
  let beforeDelete: 'active' | 'paused' = 'active';
  let lastChange: DefinitionChange | null = null;
  for (const change of history.definitions) {
    if (toMillis(change.at) > at) break;
    lastChange = change;
    if (change.spec) spec = change.spec;
    if (change.type === 'TaskCreated' || change.type === 'TaskResumed') status = 'active';
    else if (change.type === 'TaskPaused') status = 'paused';
    else if (change.type === 'TaskDeleted') {
      beforeDelete = status === 'paused' ? 'paused' : 'active';
      status = 'deleted';
    } else if (change.type === 'TaskRestored') status = beforeDelete;
  }
  const lastOwnership = history.ownership.filter((o) => toMillis(o.at) <= at).at(-1) ?? null;
  const owner =
    lastOwnership && lastOwnership.type !== 'TaskReleased'
      ? { node: lastOwnership.node, epoch: lastOwnership.epoch }
      : null;
  return { spec, status, owner, lastChange, lastOwnership };
};
