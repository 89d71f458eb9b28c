import type { Command } from 'commander';
import type { Explanation } from '../../domain/projections/explain.js';
import { withQuery, type ApiClient } from './apiClient.js';
import { clip, printJson, printTable } from './output.js';

/** The facts behind the verdict that say something: unset ones and empty lists are left out. */
const detailLines = (details: Record<string, unknown>): string[] =>
  Object.entries(details)
    .filter(([, value]) => value !== null && value !== undefined && !(Array.isArray(value) && value.length === 0))
    .map(([key, value]) => `  ${key}: ${clip(typeof value === 'string' ? value : JSON.stringify(value))}`);

const printExplanation = (e: Explanation): void => {
  const lines = [
    `verdict: ${e.verdict}`,
    e.summary,
    `tick: ${e.tick ?? '(none near that time)'} (asked about ${e.at})`,
    ...(Object.keys(e.details).length > 0 ? ['details:', ...detailLines(e.details)] : []),
    'evidence:',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  printTable(e.evidence, ['position', 'type', 'actor']);
};

/** `kairos explain <task> --at <time>`: why the task did or did not fire around that time, with the events that say so. */
export const registerExplain = (program: Command, client: () => ApiClient): void => {
  program
    .command('explain <task>')
    .description('why a task did or did not fire around a time, and the events that say so')
    .requiredOption('--at <time>', 'the time asked about: ISO-8601, or a duration ago (15m, 24h, 7d)')
    .option('--json', "print the API's JSON")
    .action(async (task: string, flags: { at: string; json?: boolean }) => {
      const { body } = await client().get<Explanation>(
        withQuery(`/api/tasks/${encodeURIComponent(task)}/explain`, { at: flags.at }),
      );
      if (flags.json) printJson(body);
      else printExplanation(body);
    });
};
