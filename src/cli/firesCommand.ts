import type { Command } from 'commander';
import type { QueryResult } from '../projections/queries/index.js';
import { withQuery, type ApiClient } from './apiClient.js';
import { clip, printJson, printMore, printTable } from './output.js';

/** Named as `GET /api/fires` names its parameters, so the filters go to the node as they are. */
type FiresFlags = {
  task?: string;
  status?: string;
  node?: string;
  trigger?: string;
  since?: string;
  until?: string;
  minLateness?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
};

/** `kairos fires`: attempts across all tasks, newest fired first, filtered as `GET /api/fires` filters. */
export const registerFires = (program: Command, client: () => ApiClient): void => {
  program
    .command('fires')
    .description('fire attempts across all tasks, newest fired first')
    .option('--task <id>', 'only this task')
    .option('--status <list>', 'comma list of in-flight, succeeded, failed, timed-out, cancelled')
    .option('--node <id>', 'only attempts fired on this node')
    .option('--trigger <list>', 'comma list of schedule, manual, catch-up, retry')
    .option('--since <time>', 'fired at or after: ISO-8601, or a duration ago (15m, 24h, 7d), or now')
    .option('--until <time>', 'fired before: ISO-8601, or a duration ago')
    .option('--min-lateness <duration>', 'fired at least this late (50ms, 2s)')
    .option('--limit <n>', 'attempts per page (default 100, at most 1000)')
    .option('--cursor <cursor>', 'the next page, as the previous page named it')
    .option('--json', "print the API's JSON")
    .action(async ({ json, ...filters }: FiresFlags) => {
      const { body } = await client().get<QueryResult<'fires'>>(withQuery('/api/fires', filters));
      if (json) return printJson(body);
      printTable(
        body.fires.map((f) => ({
          firedAt: f.firedAt,
          task: f.taskId,
          attempt: f.attempt,
          trigger: f.trigger,
          status: f.status,
          latenessMs: f.latenessMs,
          node: f.node,
          durationMs: f.durationMs,
          message: f.message === null ? null : clip(f.message),
        })),
        ['firedAt', 'task', 'attempt', 'trigger', 'status', 'latenessMs', 'node', 'durationMs', 'message'],
      );
      printMore(body.next);
    });
};
