import type { TaskHistory } from '../task/capture.js';
import type { DefinitionChange, OwnershipChange } from '../task/events.js';
import type { TaskSpec } from '../task/spec.js';
import { toMillis } from '../time/instant.js';
import { applyEvents, emptyRows, settleRows } from './foldReadModel.js';
import type { ProjectedEvent } from './readModel.js';
import { boardRowOfState, taskBoard, type TaskBoardRow } from './taskBoard.js';
import { initialTaskState } from '../task/state.js';

/**
 * Point-in-time state (`GET /api/tasks/:id?at=`, `kairos state --at`): the log folded up to an instant.
 * It folds through the task board's own reducer, so "as it was" reads exactly like "as it is": the
 * definition in force, status, owner, who paused it and why, last fire and outcome.
 */

const board = taskBoard();

/**
 * Each task's board row as of `at`: a stream's events are folded in order up to the first one that
 * happened after `at` (a later event never folds in ahead of an earlier one). Tasks whose first event
 * is after `at` did not exist yet and have no row — unless retention truncated the stream after
 * `at`: then its first capture's history says what the definition, status and owner were, and the
 * task is listed in `recalled` (its row knows nothing of fires).
 */
export const boardAt = (
  events: Iterable<ProjectedEvent>,
  at: number,
): { rows: Map<string, TaskBoardRow>; recalled: Set<string> } => {
  const streams = new Map<string, ProjectedEvent[]>();
  for (const e of events) {
    if (e.kind !== 'task') continue;
    const stream = streams.get(e.taskId);
    if (stream) stream.push(e);
    else streams.set(e.taskId, [e]);
  }
  const rows = emptyRows(board);
  let watermark = 0;
  const recalled = new Set<string>();
  for (const [taskId, stream] of streams) {
    const first = stream[0] as ProjectedEvent;
    if (first.revision > 0 && first.occurredAt > at) {
      const row = recalledRow(taskId, stream, at);
      if (row) {
        rows.tasks.set(taskId, row);
        recalled.add(taskId);
      }
      continue;
    }
    const end = stream.findIndex((e) => e.occurredAt > at);
    // Each stream from a watermark of its own; the rows settled once at the end, not once per stream.
    watermark = Math.max(watermark, applyEvents(board, end < 0 ? stream : stream.slice(0, end), rows));
  }
  settleRows(board, rows, watermark);
  return { rows: rows.tasks, recalled };
};

/** A truncated stream's row at `at`, from its first capture's history; undefined when it did not exist then. */
const recalledRow = (taskId: string, stream: readonly ProjectedEvent[], at: number): TaskBoardRow | undefined => {
  const capture = stream.find((e) => e.kind === 'task' && e.event.type === 'TaskStateCaptured');
  if (capture?.kind !== 'task' || capture.event.type !== 'TaskStateCaptured') return undefined;
  const history = capture.event.data.history;
  const then = recallFromHistory(history, at);
  if (then.status === 'absent') return undefined;
  const row = boardRowOfState({ ...initialTaskState(taskId), status: then.status, spec: then.spec, owner: then.owner });
  const change = then.lastChange;
  const action = change && { actor: change.actor, at: toMillis(change.at), reason: change.reason ?? null };
  const created = history.definitions[0];
  return {
    ...row,
    paused: then.status === 'paused' ? action : null,
    deleted: then.status === 'deleted' ? action : null,
    createdAt: created ? toMillis(created.at) : null,
    changedAt: action?.at ?? null,
    changedBy: action?.actor ?? null,
    revision: change?.revision ?? -1,
  };
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
