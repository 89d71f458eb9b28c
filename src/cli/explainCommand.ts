import type { Command } from 'commander';
import type { Explanation } from '../../domain/projections/explain.js';
import { withQuery, type ApiClient } from './apiClient.js';
import { openDirectStore, throughNodeOrStore } from './directStore.js';
import type { LogStoreFlags } from './logStore.js';
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

/** The node's own explanation, run here on the log itself: no node needed (a restored log, a stopped node). */
const explainFromLog = async (flags: LogStoreFlags, task: string, at: string): Promise<Explanation> => {
  const [{ queryExplain }, { parseOrThrow }, { ExplainQuery }, { systemClock }, store] = await Promise.all([
    import('../projections/queries/explainQueries.js'),
    import('../../domain/errors/index.js'),
    import('../api/readQueries.js'),
    import('../clock/clock.js'),
    openDirectStore(flags),
  ]);
  try {
    return await queryExplain(store, systemClock, {
      task,
      at: parseOrThrow(ExplainQuery(systemClock.now()), { at }).at,
    });
  } finally {
    await store.close();
  }
};

/** `kairos explain <task> --at <time>`: why the task did or did not fire around that time, with the events that say so. */
export const registerExplain = (program: Command, client: () => ApiClient): void => {
  program
    .command('explain <task>')
    .description('why a task did or did not fire around a time, and the events that say so')
    .requiredOption('--at <time>', 'the time asked about: ISO-8601, or a duration ago (15m, 24h, 7d), or now')
    .option('--json', "print the API's JSON")
    .option('--store <url>', 'read this log directly, not through a node (KAIROS_STORE when no node answers)')
    .option('--data-dir <dir>', 'read the embedded log of this data directory directly (KAIROS_DATA_DIR)')
    .action(async (task: string, flags: { at: string; json?: boolean } & LogStoreFlags) => {
      const body = await throughNodeOrStore(
        flags,
        async () =>
          (
            await client().get<Explanation>(
              withQuery(`/api/tasks/${encodeURIComponent(task)}/explain`, { at: flags.at }),
            )
          ).body,
        () => explainFromLog(flags, task, flags.at),
      );
      if (flags.json) printJson(body);
      else printExplanation(body);
    });
};
