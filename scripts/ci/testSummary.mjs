// Prints the suite's closing line ("Tests: N passed, N failed, N skipped") from Vitest's JSON report,
// so CI logs end with one plain, machine-readable summary whatever the reporter printed before.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`no test report at ${file}: ${err.message}`);
  process.exit(1);
}
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`Tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
process.exit(report.numFailedTests === 0 && report.numPassedTests > 0 ? 0 : 1);
