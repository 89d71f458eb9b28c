import { Option, type Command } from 'commander';
import type { ReplayArgs, ReplayResult } from '../projections/readSide.js';
import type { RebuildProgress } from '../projections/rebuild.js';
import { ApiError, NodeUnreachableError, type ApiClient } from './apiClient.js';
import { throughNodeOrStore } from './directStore.js';
import type { LogStoreFlags } from './logStore.js';
import { clip, printJson, printTable } from './output.js';
import { openProgressBar } from './progressBar.js';

type ReplayFlags = LogStoreFlags & {
  model?: string[];
  from?: string;
  check?: boolean;
  readDb?: string;
  json?: boolean;
};
type OnProgress = (progress: RebuildProgress) => void;
type ReplayLine =
  | { progress: RebuildProgress }
  | { result: ReplayResult }
  | { error: { code: string; message: string; details?: unknown } };

/** How often a plain progress line is written when stderr is not a terminal: a log file stays short. */
const PLAIN_EVERY_MS = 5_000;

/** Progress on stderr: a bar on a terminal; otherwise a plain line now and then (none for a quick replay). */
const progressOutput = (): { update: OnProgress; stop(): void } => {
  const bar = openProgressBar(false);
  let lastLine = Date.now();
  return {
    update: (p) => {
      const detail = `${p.events} events, ${p.eventsPerSecond} events/s`;
      bar.update('replay', p.position, Math.max(p.head, p.position), detail);
      if (!process.stderr.isTTY && Date.now() - lastLine >= PLAIN_EVERY_MS) {
        lastLine = Date.now();
        process.stderr.write(`replay: ${p.phase}, log position ${p.position} of ${p.head}, ${detail}\n`);
      }
    },
    stop: () => bar.stop(),
  };
};

/** The node rebuilds (its live models go on serving meanwhile) and streams its progress as NDJSON. */
const replayThroughNode = async (api: ApiClient, args: ReplayArgs, onProgress: OnProgress): Promise<ReplayResult> => {
  const lines = api.postLines('/api/read-models/replay', args) as AsyncGenerator<ReplayLine>;
  try {
    for await (const line of lines) {
      if ('progress' in line) onProgress(line.progress);
      else if ('result' in line) return line.result;
      else throw new ApiError(200, line.error.code, line.error.message, line.error.details);
    }
  } catch (err) {
    if (err instanceof ApiError || err instanceof NodeUnreachableError) throw err;
    throw new Error(`the node's answer broke off: ${(err as Error).message}`);
  }
  throw new Error('the node ended the replay without a result (did it stop?)');
};

/**
 * With the node down, the CLI rebuilds the read database itself, from the log the node would read —
 * in a thread of its own sized for it (`replayOffline`).
 */
const replayDirectly = async (flags: ReplayFlags, args: ReplayArgs, onProgress: OnProgress): Promise<ReplayResult> => {
  const [{ compileConfig }, { logStoreUrl }, { replayOffline }] = await Promise.all([
    import('../config/config.js'),
    import('./logStore.js'),
    import('../projections/host/offlineReplay.js'),
  ]);
  // Enabled whatever KAIROS_READ_SIDE says: asking for a replay is asking for the read database.
  const { readSide: settings } = compileConfig({
    env: process.env,
    flags: { store: flags.store, dataDir: flags.dataDir, readSide: { enabled: true, db: flags.readDb } },
  });
  if (!settings) throw new Error('the configuration has no read side');
  const url = await logStoreUrl(flags, 'source');
  process.stderr.write(`replaying ${url} into ${settings.db}\n`);
  return replayOffline({ url, settings, args }, onProgress);
};

const printSummary = ({ progress: p, comparison }: ReplayResult): void => {
  process.stdout.write(
    `${comparison ? 'checked' : 'replayed'} ${p.models.join(', ')}: ${p.events} events up to log position ${p.position} in ${(p.elapsedMs / 1000).toFixed(2)} s, ${p.eventsPerSecond} events/s\n`,
  );
  if (!comparison) return;
  printTable(
    comparison.tables.map((t) => ({
      ...t,
      examples: t.examples.length === 0 ? null : clip(JSON.stringify(t.examples)),
    })),
    ['model', 'table', 'rows', 'rebuiltRows', 'onlyLive', 'onlyRebuilt', 'examples'],
  );
  const differing = comparison.tables.filter(
    (t) => t.onlyLive > 0 || t.onlyRebuilt > 0 || t.rows !== t.rebuiltRows,
  ).length;
  process.stdout.write(
    comparison.ok
      ? `ok: a rebuild equals the live models at log position ${comparison.position}\n`
      : `DIFFERENT: ${differing} table(s) differ from a rebuild at log position ${comparison.position}\n`,
  );
};

const position = (text: string): number => {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`--from must be a log position (a whole number >= 0), got ${text}`);
  return n;
};

/**
 * `kairos replay`: rebuilds read models from the log (through the node, or directly when it is down),
 * or with `--check` compares a rebuild with the live models; exit code 1 when they differ.
 */
export const registerReplay = (program: Command, client: () => ApiClient): void => {
  program
    .command('replay')
    .description('rebuild read models from the event log, or (--check) compare a rebuild with them')
    .option(
      '--model <name>',
      'board | fires | audit | cluster | stats (repeatable; default all)',
      (name: string, all: string[] = []) => [...all, name],
    )
    .option('--from <position>', 'rebuild from this log position on')
    .addOption(
      new Option('--check', 'rebuild aside and compare with the live models, row for row; changes nothing').conflicts(
        'from',
      ),
    )
    .option('--json', 'print the result as JSON')
    .option('--store <url>', 'rebuild from this log directly, not through a node (KAIROS_STORE when no node answers)')
    .option('--data-dir <dir>', 'rebuild the read database of this data directory directly (KAIROS_DATA_DIR)')
    .option(
      '--read-db <file>',
      'read database to rebuild when the node is down (KAIROS_READ_DB; default <data dir>/read.db)',
    )
    .action(async (flags: ReplayFlags) => {
      const args: ReplayArgs = {
        ...(flags.model ? { models: flags.model } : {}),
        ...(flags.from === undefined ? {} : { from: position(flags.from) }),
        ...(flags.check ? { check: true } : {}),
      };
      const progress = progressOutput();
      let result: ReplayResult;
      try {
        result = await throughNodeOrStore(
          flags,
          () => replayThroughNode(client(), args, progress.update),
          () => replayDirectly(flags, args, progress.update),
        );
      } finally {
        progress.stop();
      }
      if (flags.json) printJson(result);
      else printSummary(result);
      if (result.comparison && !result.comparison.ok) process.exitCode = 1;
    });
};
