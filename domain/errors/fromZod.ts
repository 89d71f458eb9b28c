import type { z } from 'zod';
import { ValidationError, type FieldIssue } from './kairosError.js';

/** Turns zod issues into field issues whose path reads like the input (`schedule.cron`, `tasks[2].id`). */
export const fieldIssuesOf = (error: z.ZodError, prefix = ''): FieldIssue[] =>
  error.issues.map((issue) => ({
    path: joinPath(prefix, issue.path),
    message: issue.message,
  }));

const joinPath = (prefix: string, path: readonly PropertyKey[]): string => {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
};

/** Parses `input` with `schema`, throwing a `ValidationError` that names every bad field. */
export const parseOrThrow = <S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.output<S> => {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new ValidationError(fieldIssuesOf(result.error, prefix));
};
