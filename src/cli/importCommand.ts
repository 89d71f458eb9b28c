import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { ValidationError } from '../../domain/errors/index.js';
import { seconds } from './exportCommand.js';
import { openLogStore, type LogStoreFlags } from './logStore.js';
import { openProgressBar } from './progressBar.js';

type ImportFlags = LogStoreFlags & { in: string; quiet?: boolean };

/** `kairos import`: appends a `kairos export` file to a store, keeping ids, streams and revisions. */
export const registerImport = (program: Command): void => {
  program
    .command('import')
    .description('append an NDJSON export to a store, keeping event ids, streams and revisions; safe to repeat')
    .requiredOption('--in <file>', 'file written by kairos export (a file, not -: it is read twice)')
    .option('--store <url>', 'store to fill (KAIROS_STORE; default sqlite:<data dir>/kairos.db)')
    .option('--data-dir <dir>', 'data directory of the embedded store (KAIROS_DATA_DIR)')
    .option('--quiet', 'no progress bar and no summary')
    .addHelpText(
      'after',
      '\nThe whole file is checked first (a bad line is named and nothing is written). Each event is appended at\n' +
        'its original revision; events already there (same id, same revision) are skipped, so importing twice\n' +
        'changes nothing, and a different event at a revision stops the import with that stream and revision.\n' +
        'Recorded times and positions are not kept: the target store records its own (the file keeps the\n' +
        'original time of each event). A stream truncated by retention starts at the same revision in the\n' +
        'target. Import into a store no node is writing to.',
    )
    .action(async (flags: ImportFlags) => {
      if (flags.in === '-' || !statSync(flags.in, { throwIfNoEntry: false })?.isFile())
        throw new ValidationError([
          {
            path: '--in',
            message: flags.in === '-' ? 'must name a file (it is read twice)' : `there is no file ${flags.in}`,
          },
        ]);
      const { importLog } = await import('../store/ndjson/importLog.js');
      const { url, store } = await openLogStore(flags, 'target');
      const bar = openProgressBar(flags.quiet === true);
      const started = Date.now();
      try {
        const result = await importLog(store, flags.in, {
          onProgress: (p) =>
            p.phase === 'checking'
              ? bar.update('check ', p.done, p.total, `${(p.done / 2 ** 20).toFixed(1)} MiB`)
              : bar.update('import', p.done, p.total, `${p.done}/${p.total} events`),
        });
        bar.stop();
        if (!flags.quiet)
          process.stdout.write(
            `imported ${result.events} events of ${result.streams} streams into ${url} in ${seconds(started)} s: ` +
              `${result.written} written, ${result.skipped} already there` +
              (result.dropped > 0 ? `, ${result.dropped} dropped (truncated in the source during the export)` : '') +
              '\n',
          );
      } finally {
        bar.stop();
        await store.close();
      }
    });
};
