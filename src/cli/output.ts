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

/**
 * How a field the API names is spelled on the command line, when a flag of the command that ran
 * carries it (`minLateness` → `--min-lateness`); undefined for a field no flag gives.
 */
export type FlagOf = (field: string) => string | undefined;

/**
 * An API issue's path as the user typed it: the flag that carried the field (a repeatable flag sends
 * its values under the plural: `--model` → `models`), with the path inside it when there is one.
 */
const fieldLabel = (path: string, flagOf: FlagOf | undefined): string => {
  if (!path) return '(document)';
  const field = path.replace(/^(body|query)\./, '');
  const head = field.split(/[.[]/)[0] ?? field;
  const flag = flagOf?.(head) ?? (head.endsWith('s') ? flagOf?.(head.slice(0, -1)) : undefined);
  if (!flag) return path;
  return field === head ? flag : `${flag} (${field})`;
};

/**
 * Prints an error the way a user can act on it (the code, the message, each bad field — as the flag
 * that gave it, when one did) and sets the exit code.
 */
export const reportError = (err: unknown, flagOf?: FlagOf): void => {
  if (err instanceof ApiError || isKairosError(err)) {
    const issues = (err.details as { issues?: Array<{ path: string; message: string }> } | undefined)?.issues ?? [];
    if (issues.length === 0) process.stderr.write(`error: ${err.code}: ${err.message}\n`);
    else {
      process.stderr.write(
        `error: ${err.code}: ${issues.length === 1 ? 'a field is' : `${issues.length} fields are`} invalid\n`,
      );
      for (const issue of issues) process.stderr.write(`  - ${fieldLabel(issue.path, flagOf)}: ${issue.message}\n`);
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
