import type { Command } from 'commander';
import { withQuery, type ApiClient } from './apiClient.js';
import { printJson, printTable } from './output.js';

type Latency = { p50Ms: number | null; p99Ms: number | null; maxMs: number | null };
type Point = {
  at?: string | null;
  fires: number;
  succeeded: number;
  failed: number;
  skipped: number;
  misfired: number;
  lateness: Latency;
};
/** What the table shows of `GET /api/stats` (the JSON has more: retries, durations, means). */
type StatsJson = { task: string | null; step: string; from: string; to: string; points: Point[]; total: Point };
type StatsFlags = { task?: string; from?: string; to?: string; step?: string; json?: boolean };

const rowOf = (at: string, p: Point): Record<string, unknown> => ({
  at,
  fires: p.fires,
  succeeded: p.succeeded,
  failed: p.failed,
  skipped: p.skipped,
  misfired: p.misfired,
  latenessP50: p.lateness.p50Ms,
  latenessP99: p.lateness.p99Ms,
  latenessMax: p.lateness.maxMs,
});

/** `kairos stats`: fires, outcomes and lateness per minute, hour or day, with the range's total. */
export const registerStats = (program: Command, client: () => ApiClient): void => {
  program
    .command('stats')
    .description('fires, outcomes and lateness (ms) per minute, hour or day; buckets with no fire are left out')
    .option('--task <id>', 'one task (default: all tasks)')
    .option('--from <time>', 'start: ISO-8601, or a duration ago (default: 60 steps before --to)')
    .option('--to <time>', 'end: ISO-8601, or a duration ago (default: now)')
    .option('--step <step>', 'minute | hour | day (default: minute for all tasks, hour for one task)')
    .option('--json', "print the API's JSON")
    .action(async ({ json, ...query }: StatsFlags) => {
      const { body } = await client().get<StatsJson>(withQuery('/api/stats', query));
      if (json) return printJson(body);
      process.stdout.write(
        `${body.task ?? 'all tasks'}, per ${body.step}, from ${body.from} to ${body.to} (lateness in ms)\n`,
      );
      printTable(
        [...body.points.map((p) => rowOf(p.at ?? '-', p)), rowOf('total', body.total)],
        ['at', 'fires', 'succeeded', 'failed', 'skipped', 'misfired', 'latenessP50', 'latenessP99', 'latenessMax'],
      );
    });
};
