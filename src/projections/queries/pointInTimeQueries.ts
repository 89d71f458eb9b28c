import { NotFoundError } from '../../../domain/errors/index.js';
import { boardAt, CLOCK_SLACK_MS, recallFromHistory } from '../../../domain/projections/pointInTime.js';
import type { ProjectedEvent } from '../../../domain/projections/readModel.js';
import { redactSpec } from '../../../domain/projections/redaction.js';
import { TASK_STREAM_PREFIX, taskStreamOf } from '../../../domain/task/events.js';
import type { EventStore } from '../../store/eventStore.js';
import { decodeLogEvent } from '../projectedEvent.js';
import { taskBoard } from '../../../domain/projections/taskBoard.js';
import { ReadModelDb } from '../readModelDb.js';
import { boardView, queryBoard, type BoardArgs } from './boardQueries.js';
import { isoOrNull } from './page.js';

const PAGE = 5_000;

const decodedOf = (recorded: Parameters<typeof decodeLogEvent>[0][]): ProjectedEvent[] =>
  recorded.flatMap((r) => {
    const decoded = decodeLogEvent(r);
    return decoded.ok ? [decoded.event] : [];
  });

/**
 * A task as it was at `at`, folded from its stream. When retention truncated the stream after `at`,
 * the definition, status and owner come from the history the first capture kept (`exact: false`).
 */
export const queryTaskAt = async (store: EventStore, args: { task: string; at: number }) => {
  const events = decodedOf(await store.readStream(taskStreamOf(args.task)));
  const first = events[0];
  if (!first) throw new NotFoundError('task', args.task);
  const capture = events.find((e) => e.kind === 'task' && e.event.type === 'TaskStateCaptured');
  const truncated = first.revision > 0;
  if (
    truncated &&
    capture?.kind === 'task' &&
    capture.event.type === 'TaskStateCaptured' &&
    args.at < Date.parse(capture.event.data.at)
  ) {
    const recalled = recallFromHistory(capture.event.data.history, args.at);
    if (recalled.status === 'absent') throw notYet(args.task, args.at);
    return {
      id: args.task,
      at: isoOrNull(args.at),
      exact: false,
      note: `the stream keeps events from revision ${first.revision} on (retention): the definition, status and owner come from the history its capture kept; fires of that time are gone`,
      status: recalled.status,
      spec: recalled.spec && redactSpec(recalled.spec),
      owner: recalled.owner,
      lastChange: recalled.lastChange && { ...recalled.lastChange, spec: undefined },
      lastOwnership: recalled.lastOwnership,
    };
  }
  const row = boardAt(truncated && capture ? events.slice(events.indexOf(capture)) : events, args.at).rows.get(
    args.task,
  );
  if (!row) throw notYet(args.task, args.at);
  return {
    ...boardView(row),
    at: isoOrNull(args.at),
    exact: true,
    asOf: { revision: row.revision, position: row.position },
  };
};

const notYet = (task: string, at: number) =>
  Object.assign(new NotFoundError('task', task), {
    message: `task '${task}' did not exist at ${new Date(at).toISOString()}`,
  });

/**
 * Every task as it was at `at`: the log read from the start until a page holds only events that
 * happened more than a minute after `at` (by the time each event names: an import into a new store
 * keeps those, not the store's recording times), folded into a
 * board of that time in a scratch in-memory database, which the board's own query then filters,
 * searches, sorts and pages exactly as it does the live board.
 */
export const queryBoardAt = async (store: EventStore, args: BoardArgs & { at: number }) => {
  const events: ProjectedEvent[] = [];
  let after = 0n;
  for (;;) {
    const page = await store.readAll({ after, maxCount: PAGE });
    const decoded = decodedOf(page.filter((r) => r.stream.startsWith(TASK_STREAM_PREFIX)));
    events.push(...decoded);
    const past = decoded.length > 0 && decoded.every((e) => e.occurredAt > args.at + CLOCK_SLACK_MS);
    if (page.length < PAGE || past) break;
    after = page.at(-1)!.position;
    // The read-side process serves other queries and feeds meanwhile.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const board = taskBoard();
  const db = ReadModelDb.open(':memory:', [{ model: board }]);
  try {
    const schema = db.schema('board', 'tasks');
    const insert = db.db.prepare(
      `INSERT INTO "${db.tableName('board', 'tasks')}" VALUES (${schema.columns.map(() => '?').join(', ')})`,
    );
    const { rows, recalled } = boardAt(events, args.at);
    db.db.transaction(() => {
      for (const row of rows.values()) insert.run(...schema.toValues(row));
    })();
    // Truncated streams (retention) tell only their definition, status and owner of that time.
    return { at: isoOrNull(args.at), ...queryBoard(db, args), recalledFromHistory: [...recalled].sort() };
  } finally {
    db.close();
  }
};
