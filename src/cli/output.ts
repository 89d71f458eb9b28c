import { isKairosError } from '../../domain/errors/index.js';
import { ApiError, NodeUnreachableError } from './apiClient.js';

export const printJson = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};

/** A plain aligned table: operators read it in a terminal, scripts use `--json`. */
export const printTable = (rows: ReadonlyArray<Record<string, unknown>>, columns: readonly string[]): void => {
  const cell = (v: unknown): string =>
    v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]): string =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${line(columns.map((c) => c.toUpperCase()))}\n`);
  for (const r of rows) process.stdout.write(`${line(columns.map((c) => cell(r[c])))}\n`);
};

/** Text cut to `max` characters, the cut marked with `…`: a table stays readable whatever a cell holds. */
export const clip = (text: string, max = 60): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/** After a page of a listing: how to ask for the next one, when there is one. */
export const printMore = (next: string | null | undefined): void => {
  if (next) process.stdout.write(`more: --cursor ${next}\n`);
};

/** Prints an error the way a user can act on it (the code, the message, each bad field) and sets the exit code. */
export const reportError = (err: unknown): void => {
  if (err instanceof ApiError || isKairosError(err)) {
    const issues = (err.details as { issues?: Array<{ path: string; message: string }> } | undefined)?.issues ?? [];
    if (issues.length === 0) process.stderr.write(`error: ${err.code}: ${err.message}\n`);
    else {
      process.stderr.write(
        `error: ${err.code}: ${issues.length === 1 ? 'a field is' : `${issues.length} fields are`} invalid\n`,
      );
      for (const issue of issues) process.stderr.write(`  - ${issue.path || '(document)'}: ${issue.message}\n`);
    }
  } else if (err instanceof NodeUnreachableError) {
    process.stderr.write(
      `error: ${err.message}\n  is the node running? start it with \`kairos start\`, or pass --url\n`,
    );
  } else {
    process.stderr.write(`error: ${(err as Error)?.message ?? String(err)}\n`);
  }
  process.exitCode = 1;
};
