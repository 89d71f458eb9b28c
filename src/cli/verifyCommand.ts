import type { Command } from 'commander';
import type { VerifyReport } from '../../domain/verify/verifyLog.js';
import type { ApiClient } from './apiClient.js';
import { openDirectStore, throughNodeOrStore } from './directStore.js';
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
    .option('--store <url>', 'check this store directly, not through a node (KAIROS_STORE when no node answers)')
    .option('--data-dir <dir>', 'check the embedded store of this data directory directly (KAIROS_DATA_DIR)')
    .action(async (flags: { json?: boolean; store?: string; dataDir?: string }) => {
      const report = await throughNodeOrStore(
        flags,
        async () => (await client().get<VerifyReport>('/api/verify')).body,
        async () => {
          const [{ verifyStore }, store] = await Promise.all([
            import('../verify/verifyStore.js'),
            openDirectStore(flags),
          ]);
          try {
            return await verifyStore(store);
          } finally {
            await store.close();
          }
        },
      );
      if (flags.json) printJson(report);
      else printReport(report);
      if (!report.ok) process.exitCode = 1;
    });
};
