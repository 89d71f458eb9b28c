import type { Command } from 'commander';
import type { VerifyReport } from '../../domain/verify/verifyLog.js';
import { NodeUnreachableError, type ApiClient } from './apiClient.js';
import { openDirectStore } from './directStore.js';
import { printJson } from './output.js';

const printReport = (report: VerifyReport): void => {
  process.stdout.write(
    `${report.ok ? 'ok' : 'VIOLATIONS'}: ${report.tasks} tasks, ${report.events} events, ${report.fires} fires, ${report.inFlight} in flight\n`,
  );
  for (const [kind, n] of Object.entries(report.counts)) if (n > 0) process.stdout.write(`  ${kind}: ${n}\n`);
  for (const v of report.violations.slice(0, 50)) {
    process.stdout.write(`  - ${v.kind} ${v.taskId}${v.revision === null ? '' : `@${v.revision}`}: ${v.message}\n`);
  }
  if (report.violations.length > 50) process.stdout.write(`  … ${report.violations.length - 50} more (use --json)\n`);
};

/** `kairos verify`: checks the log's invariants; exit code 1 on any violation. */
export const registerVerify = (program: Command, client: () => ApiClient): void => {
  program
    .command('verify')
    .description("check the log's invariants (no tick fired twice or lost, epochs only grow); exit 1 on a violation")
    .option('--json', 'print the report as JSON')
    .option('--store <url>', 'store to read when the node is down (KAIROS_STORE)')
    .option('--data-dir <dir>', 'data directory of the embedded store (KAIROS_DATA_DIR)')
    .action(async (flags: { json?: boolean; store?: string; dataDir?: string }) => {
      let report: VerifyReport;
      try {
        report = (await client().get<VerifyReport>('/api/verify')).body;
      } catch (err) {
        if (!(err instanceof NodeUnreachableError)) throw err;
        const [{ verifyStore }, store] = await Promise.all([
          import('../verify/verifyStore.js'),
          openDirectStore(flags),
        ]);
        try {
          report = await verifyStore(store);
        } finally {
          await store.close();
        }
      }
      if (flags.json) printJson(report);
      else printReport(report);
      if (!report.ok) process.exitCode = 1;
    });
};
