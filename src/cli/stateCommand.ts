import type { Command } from 'commander';
import type { QueryResult } from '../projections/queries/index.js';
import type { EventStore } from '../store/eventStore.js';
import { withQuery, type ApiClient } from './apiClient.js';
import { openDirectStore, throughNodeOrStore } from './directStore.js';
import type { LogStoreFlags } from './logStore.js';
import { clip, printJson, printMore, printTable } from './output.js';
import { TASK_COLUMNS, taskRow } from './taskCommands.js';

type TaskAt = QueryResult<'taskAt'>;
type BoardAt = QueryResult<'boardAt'>;
type StateFlags = { at: string; limit?: string; cursor?: string; json?: boolean } & LogStoreFlags;

const jsonText = (value: unknown): string => (value === null || value === undefined ? '-' : JSON.stringify(value));

/** `label: value` lines, the labels aligned; a null value leaves its line out. */
const printFields = (fields: ReadonlyArray<readonly [string, string | null]>): void => {
  const shown = fields.filter((f): f is readonly [string, string] => f[1] !== null);
  const width = Math.max(...shown.map(([label]) => label.length)) + 2;
  for (const [label, value] of shown) process.stdout.write(`${`${label}:`.padEnd(width)}${value}\n`);
};

const actionText = (a: { by: string | null; at: string | null; reason: string | null } | null): string | null =>
  a && `at ${a.at ?? '-'} by ${a.by ?? '-'}${a.reason ? `: ${clip(a.reason)}` : ''}`;

const printTaskAt = (t: TaskAt): void => {
  const owner = t.owner && `${t.owner.node} (epoch ${t.owner.epoch})`;
  if ('asOf' in t) {
    process.stdout.write(
      `${t.id} at ${t.at}: exact, folded from its events up to revision ${t.asOf.revision} (log position ${t.asOf.position})\n`,
    );
    printFields([
      ['status', t.lifecycle === t.status ? t.status : `${t.status} (${t.lifecycle})`],
      ['schedule', jsonText(t.spec?.schedule)],
      ['owner', owner ?? '-'],
      ['paused', actionText(t.paused)],
      ['deleted', actionText(t.deleted)],
      [
        'last fire',
        t.lastFire ? `${t.lastFire.firedAt} (${t.lastFire.trigger}, scheduled ${t.lastFire.scheduledAt})` : 'none yet',
      ],
      [
        'last outcome',
        t.lastOutcome
          ? `${t.lastOutcome.status} at ${t.lastOutcome.at}${t.lastOutcome.message ? `: ${clip(t.lastOutcome.message)}` : ''}`
          : 'none yet',
      ],
    ]);
    return;
  }
  process.stdout.write(`${t.id} at ${t.at}: from the history its capture kept, not exact (${t.note})\n`);
  const change = t.lastChange;
  printFields([
    ['status', t.status],
    ['schedule', jsonText(t.spec?.schedule)],
    ['owner', owner ?? '-'],
    [
      'last change',
      change && `${change.type} at ${change.at} by ${change.actor}${change.reason ? `: ${clip(change.reason)}` : ''}`,
    ],
  ]);
};

/**
 * Point in time straight from the log, no node needed (a disaster recovery inspects a restored log
 * before any node fires on it): the node's own query and time parsing, run in this process.
 */
const fromLog = async <T>(flags: LogStoreFlags, fold: (store: EventStore, now: number) => Promise<T>): Promise<T> => {
  const store = await openDirectStore(flags);
  try {
    return await fold(store, Date.now());
  } finally {
    await store.close();
  }
};

const loaded = () =>
  Promise.all([
    import('../projections/queries/pointInTimeQueries.js'),
    import('../../domain/errors/index.js'),
    import('../api/readQueries.js'),
  ]);

const taskFromLog = (flags: LogStoreFlags, task: string, at: string): Promise<TaskAt> =>
  fromLog(flags, async (store, now) => {
    const [{ queryTaskAt }, { parseOrThrow }, { ExplainQuery }] = await loaded();
    return queryTaskAt(store, { task, at: parseOrThrow(ExplainQuery(now), { at }).at });
  });

const boardFromLog = (flags: LogStoreFlags, query: Record<string, string | undefined>): Promise<BoardAt> =>
  fromLog(flags, async (store, now) => {
    const [{ queryBoardAt }, { parseOrThrow }, { BoardQuery }] = await loaded();
    const { at, ...args } = parseOrThrow(BoardQuery(now), query);
    return queryBoardAt(store, { ...args, at: at as number });
  });

/** `kairos state --at <time> [task]`: a task, or the whole board, as it was at a past time. */
export const registerState = (program: Command, client: () => ApiClient): void => {
  program
    .command('state [task]')
    .description('a task, or every task, as it was at a past time (folded from the log)')
    .requiredOption('--at <time>', 'the time: ISO-8601, or a duration ago (15m, 24h, 7d), or now')
    .option('--limit <n>', 'tasks per page of the board (default 1000)')
    .option('--cursor <cursor>', 'the next page of the board, as the previous page named it')
    .option('--json', "print the API's JSON")
    .option('--store <url>', 'fold this log directly, not through a node (KAIROS_STORE when no node answers)')
    .option('--data-dir <dir>', 'fold the embedded log of this data directory directly (KAIROS_DATA_DIR)')
    .action(async (task: string | undefined, { json, at, store, dataDir, ...page }: StateFlags) => {
      const direct = { store, dataDir };
      if (task !== undefined) {
        const body = await throughNodeOrStore(
          direct,
          async () => (await client().get<TaskAt>(withQuery(`/api/tasks/${encodeURIComponent(task)}`, { at }))).body,
          () => taskFromLog(direct, task, at),
        );
        return json ? printJson(body) : printTaskAt(body);
      }
      const body = await throughNodeOrStore(
        direct,
        async () => (await client().get<BoardAt>(withQuery('/api/tasks', { at, ...page }))).body,
        () => boardFromLog(direct, { at, ...page }),
      );
      if (json) return printJson(body);
      process.stdout.write(`the board at ${body.at}\n`);
      printTable(body.tasks.map(taskRow), TASK_COLUMNS);
      printMore(body.next);
    });
};
