import { createWriteStream, openSync, renameSync, rmSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Command } from 'commander';
import { openLogStore, type LogStoreFlags } from './logStore.js';
import { openProgressBar } from './progressBar.js';

type ExportFlags = LogStoreFlags & { out: string; quiet?: boolean };

/** `kairos export`: the whole log as NDJSON, for `kairos import` into another store or a backup. */
export const registerExport = (program: Command): void => {
  program
    .command('export')
    .description('write the whole event log as NDJSON, one event a line, in log order')
    .requiredOption('--out <file>', 'file to write, or - for stdout')
    .option('--store <url>', 'store to read (KAIROS_STORE; default sqlite:<data dir>/kairos.db)')
    .option('--data-dir <dir>', 'data directory of the embedded store (KAIROS_DATA_DIR)')
    .option('--quiet', 'no progress bar and no summary')
    .addHelpText(
      'after',
      '\nEach line: {id, stream, revision, type, data, metadata, time, position}. The export stops at the head\n' +
        'the log had when it started. A node may keep running meanwhile. `kairos import` keeps ids, streams and\n' +
        'revisions, but not time and position: the target store records its own. A stream truncated by\n' +
        'retention is exported from where its reads start.',
    )
    .action(async (flags: ExportFlags) => {
      const { exportLog } = await import('../store/ndjson/exportLog.js');
      const { url, store } = await openLogStore(flags, 'source');
      const toStdout = flags.out === '-';
      // Written aside and renamed at the end, so a failed export never leaves a file that looks whole.
      const partial = `${flags.out}.partial`;
      let out: Writable | undefined;
      const bar = openProgressBar(flags.quiet === true);
      const started = Date.now();
      // `kairos export --out - | head`: a reader that has seen enough is not an error.
      if (toStdout)
        process.stdout.on('error', (err: NodeJS.ErrnoException) => {
          if (err.code === 'EPIPE') process.exit(0);
        });
      try {
        // Opened synchronously, so that a bad path fails here with its reason rather than as an event.
        out = toStdout ? process.stdout : createWriteStream(partial, { fd: openSync(partial, 'w') });
        const { events, head } = await exportLog(store, out, {
          onProgress: (p) => bar.update('export', Number(p.position), Number(p.head), `${p.events} events`),
        });
        bar.stop();
        if (!toStdout) {
          out.end();
          await finished(out);
          renameSync(partial, flags.out);
        }
        if (!flags.quiet) {
          const summary = `exported ${events} events (the log up to position ${head}) from ${url} to ${toStdout ? 'stdout' : flags.out} in ${seconds(started)} s\n`;
          (toStdout ? process.stderr : process.stdout).write(summary);
        }
      } catch (err) {
        bar.stop();
        if (!toStdout) {
          out?.destroy();
          rmSync(partial, { force: true });
        }
        throw err;
      } finally {
        await store.close();
      }
    });
};

export const seconds = (since: number): string => ((Date.now() - since) / 1000).toFixed(1);
