import type { core, z } from 'zod';
import { ValidationError, type FieldIssue } from './kairosError.js';

/**
 * Input validation at every boundary (API bodies and queries, `kairos apply` files, config, the
 * subscriber protocol): zod issues become field issues whose path reads like the input
 * (`schedule.every`, `tasks[1].id`). Two cases zod reports on the parent are pushed down to the field:
 * an unknown key (zod: "Unrecognized key" at the object) and a bad value inside one branch of a union
 * (zod: "must have exactly one of ..." at `schedule`, when the user plainly meant `every` and got its
 * duration wrong).
 */
type Issue = core.$ZodIssue;
type Path = readonly PropertyKey[];

/** Deeper documents are refused before zod sees them: no definition is that deep, and zod's parsers recurse. */
export const MAX_DEPTH = 64;

/** `input` (what was parsed) lets union and unknown-key issues name the field the user meant. */
export const fieldIssuesOf = (error: z.ZodError, input?: unknown, prefix = ''): FieldIssue[] =>
  flatten(error.issues, [], input).map((i) => ({ path: joinPath(prefix, i.path), message: i.message }));

/** Parses `input` with `schema`, throwing a `ValidationError` naming every bad field; never anything else. */
export const parseOrThrow = <S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.output<S> => {
  const tooDeep = depthIssue(input, prefix);
  if (tooDeep) throw new ValidationError([tooDeep]);
  let result: z.ZodSafeParseResult<z.output<S>>;
  try {
    result = schema.safeParse(input);
  } catch (err) {
    // A transform that throws (e.g. a date out of range) is still bad input, not a server fault.
    throw new ValidationError([{ path: prefix || 'body', message: `cannot be validated: ${(err as Error).message}` }]);
  }
  if (result.success) return result.data;
  throw new ValidationError(fieldIssuesOf(result.error, input, prefix));
};

const flatten = (issues: readonly Issue[], base: Path, input: unknown): Array<{ path: Path; message: string }> =>
  issues.flatMap((issue) => {
    const path = [...base, ...issue.path];
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((key) => ({ path: [...path, key], message: 'is not a known field' }));
    if (issue.code === 'invalid_union') {
      const branch = intendedBranch(issue.errors, valueAt(input, path));
      if (branch) return flatten(branch, path, input);
    }
    return [{ path, message: issue.message }];
  });

/**
 * Zod lists each branch's issues under the union. The branch the user meant is the one whose keys
 * the input has (none missing) with the fewest unknown keys, provided it is the only such branch and
 * no other such branch knows its unknown keys (`{cron, every, timezone}` is ambiguous; `{every, foo}`
 * and `{at, maxRuns}` are not).
 */
const intendedBranch = (branches: readonly (readonly Issue[])[], value: unknown): readonly Issue[] | undefined => {
  if (!isPlainObject(value)) return undefined;
  const shapes = branches.map((issues) => ({
    issues,
    missing: issues.some((i) => i.path.length === 1 && !Object.hasOwn(value, i.path[0] as PropertyKey)),
    unknown: new Set(issues.flatMap((i) => (i.code === 'unrecognized_keys' && i.path.length === 0 ? i.keys : []))),
  }));
  const candidates = shapes.filter((s) => !s.missing).sort((a, b) => a.unknown.size - b.unknown.size);
  const [best, next] = candidates;
  if (!best || (next && next.unknown.size === best.unknown.size)) return undefined;
  const claimedElsewhere = [...best.unknown].some((key) => candidates.some((s) => !s.unknown.has(key)));
  return claimedElsewhere ? undefined : best.issues;
};

const isPlainObject = (v: unknown): v is Record<PropertyKey, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export const valueAt = (input: unknown, path: Path): unknown => {
  let cursor = input;
  for (const key of path) {
    if (typeof cursor !== 'object' || cursor === null || !Object.hasOwn(cursor, key)) return undefined;
    cursor = (cursor as Record<PropertyKey, unknown>)[key];
  }
  return cursor;
};

/** Whether `input` nests deeper than `MAX_DEPTH`, found without recursion; the issue names the top-level field. */
const depthIssue = (input: unknown, prefix: string): FieldIssue | undefined => {
  const stack: Array<{ value: unknown; depth: number; top: PropertyKey | undefined }> = [
    { value: input, depth: 0, top: undefined },
  ];
  while (stack.length > 0) {
    const { value, depth, top } = stack.pop() as (typeof stack)[number];
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_DEPTH)
      return {
        path: joinPath(prefix, top === undefined ? [] : [top]) || 'body',
        message: `nests deeper than ${MAX_DEPTH} levels`,
      };
    const array = Array.isArray(value);
    for (const [key, child] of Object.entries(value))
      stack.push({ value: child, depth: depth + 1, top: top ?? (array ? Number(key) : key) });
  }
  return undefined;
};

export const joinPath = (prefix: string, path: Path): string => {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
};
