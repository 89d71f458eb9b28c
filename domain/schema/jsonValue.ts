import { z } from 'zod';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * The place in `value` that is not JSON (its path), or undefined when all of it is: null, booleans,
 * finite numbers, strings, arrays and plain objects of them — what `z.json()` accepts. Walked with a
 * stack, not recursion, so a deep document cannot overflow it.
 */
export const firstNonJson = (value: unknown): PropertyKey[] | undefined => {
  // Each entry knows its parent, so a path is built only for the value that fails.
  type Entry = { value: unknown; key: PropertyKey | undefined; parent: Entry | undefined };
  const stack: Entry[] = [{ value, key: undefined, parent: undefined }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const v = next.value;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number' && Number.isFinite(v)) continue;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: i, parent: next });
      continue;
    }
    if (typeof v === 'object' && v !== null && isPlain(v)) {
      for (const key of Object.keys(v).reverse())
        stack.push({ value: (v as Record<string, unknown>)[key], key, parent: next });
      continue;
    }
    const path: PropertyKey[] = [];
    for (let at: Entry | undefined = next; at?.key !== undefined; at = at.parent) path.unshift(at.key);
    return path;
  }
  return undefined;
};

const isPlain = (v: object): boolean => {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/**
 * Any JSON value, as `z.json()` judges it but without its recursive schema: a schema with a reference
 * cycle cannot be compiled (`z.compile`), and the schemas the log is read with are compiled (see
 * `compiledSchema`). The value is kept as given, not copied.
 */
export const JsonValue = z.custom<JsonValue>().superRefine((value, ctx) => {
  const path = firstNonJson(value);
  if (path !== undefined)
    ctx.addIssue({
      code: 'custom',
      path,
      message: 'must be JSON: null, a boolean, a finite number, a string, or an array or object of them',
    });
});
