import { NotFoundError } from '../../../domain/errors/index.js';
import { boardAt, CLOCK_SLACK_MS, recallFromHistory } from '../../../domain/projections/pointInTime.js';
import type { ProjectedEvent } from '../../../domain/projections/readModel.js';
import { redactSpec } from '../../../domain/projections/redaction.js';
import { TASK_STREAM_PREFIX, taskStreamOf } from '../../../domain/task/events.js';
import type { EventStore } from '../../store/eventStore.js';
import { decodeLogEvent } from '../projectedEvent.js';
import { boardView } from './boardQueries.js';
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
  const row = boardAt(truncated && capture ? events.slice(events.indexOf(capture)) : events, args.at).get(args.task);
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

/** Every task as it was at `at`: the log read from the start up to a minute past `at`. */
export const queryBoardAt = async (store: EventStore, args: { at: number; limit: number; cursor?: [string] }) => {
  const events: ProjectedEvent[] = [];
  let after = 0n;
  for (;;) {
    const page = await store.readAll({ after, maxCount: PAGE });
    const kept = page.filter((r) => r.time.getTime() <= args.at + CLOCK_SLACK_MS);
    events.push(...decodedOf(kept.filter((r) => r.stream.startsWith(TASK_STREAM_PREFIX))));
    if (page.length < PAGE || kept.length < page.length) break;
    after = page.at(-1)!.position;
  }
  const rows = [...boardAt(events, args.at).values()]
    .filter((r) => r.status !== 'absent' && (!args.cursor || r.taskId > args.cursor[0]))
    .sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
  const page = rows.slice(0, args.limit);
  return {
    at: isoOrNull(args.at),
    tasks: page.map(boardView),
    next: rows.length > args.limit ? Buffer.from(JSON.stringify([page.at(-1)!.taskId])).toString('base64url') : null,
  };
};
