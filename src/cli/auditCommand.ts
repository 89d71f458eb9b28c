import type { Command } from 'commander';
import type { QueryResult } from '../projections/queries/index.js';
import { withQuery, type ApiClient } from './apiClient.js';
import { clip, printJson, printMore, printTable } from './output.js';

type AuditJson = QueryResult<'audit'>;
type AuditFlags = {
  actor?: string;
  action?: string;
  since?: string;
  until?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
};

const valueText = (value: unknown): string =>
  value === null || value === undefined ? '-' : typeof value === 'string' ? value : JSON.stringify(value);

/**
 * What an entry changed, one `path: before→after` after another (`path: value` for a field that had
 * none), each value cut short: the whole documents are in `--json`.
 */
const changesText = (changes: AuditJson['entries'][number]['changes']): string | null =>
  changes.length === 0
    ? null
    : clip(
        changes
          .map(({ path, before, after }) =>
            before === null || before === undefined
              ? `${path}: ${clip(valueText(after), 20)}`
              : `${path}: ${clip(valueText(before), 20)}→${clip(valueText(after), 20)}`,
          )
          .join(', '),
      );

const cell = (text: string | null): string | null => (text === null ? null : clip(text));

/** `kairos audit [task]`: who changed what, when, through which node and why; newest first. */
export const registerAudit = (program: Command, client: () => ApiClient): void => {
  program
    .command('audit [task]')
    .description('who created, changed, paused, resumed, deleted, restored or fired tasks by hand, and why')
    .option('--actor <actor>', 'only changes by this actor (user:<name>, node:<id>)')
    .option('--action <list>', 'comma list of created, updated, paused, resumed, deleted, restored, triggered')
    .option('--since <time>', 'at or after: ISO-8601, or a duration ago (15m, 24h, 7d), or now')
    .option('--until <time>', 'before: ISO-8601, or a duration ago')
    .option('--limit <n>', 'entries per page (default 100, at most 1000)')
    .option('--cursor <cursor>', 'the next page, as the previous page named it')
    .option('--json', "print the API's JSON")
    .action(async (task: string | undefined, { json, ...filters }: AuditFlags) => {
      const { body } = await client().get<AuditJson>(withQuery('/api/audit', { task, ...filters }));
      if (json) return printJson(body);
      printTable(
        body.entries.map((e) => ({
          at: e.at,
          task: clip(e.taskId),
          action: e.action,
          actor: cell(e.actor),
          node: cell(e.node),
          reason: cell(e.reason),
          changes: changesText(e.changes),
        })),
        ['at', 'task', 'action', 'actor', 'node', 'reason', 'changes'],
      );
      printMore(body.next);
    });
};
