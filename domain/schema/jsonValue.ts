import { z } from 'zod';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * The place in `value` that is not JSON (its path), or undefined when all of it is: null, booleans,
 * finite numbers, strings, arrays and plain objects (prototype `Object.prototype` or null) of them,
 * what `JSON.stringify` writes back as it was given. A value that contains itself is not JSON. Walked
 * with a stack, not recursion, so a deep document cannot overflow it.
 */
export const firstNonJson = (value: unknown): PropertyKey[] | undefined => {
  // Each entry knows its parent, so a path is built only for the value that fails; `exit` marks the
  // end of a container's children, so `open` holds exactly the containers the walk is inside.
  type Entry = { value: unknown; key: PropertyKey | undefined; parent: Entry | undefined; exit?: true };
  const open = new Set<object>();
  const pathOf = (at: Entry): PropertyKey[] => {
    const path: PropertyKey[] = [];
    for (let e: Entry | undefined = at; e?.key !== undefined; e = e.parent) path.unshift(e.key);
    return path;
  };
  const stack: Entry[] = [{ value, key: undefined, parent: undefined }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const v = next.value;
    if (next.exit) {
      open.delete(v as object);
      continue;
    }
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number' && Number.isFinite(v)) continue;
    const container = Array.isArray(v) || (typeof v === 'object' && v !== null && isPlain(v));
    if (!container || open.has(v)) return pathOf(next);
    open.add(v);
    stack.push({ value: v, key: undefined, parent: undefined, exit: true });
    if (Array.isArray(v)) for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: i, parent: next });
    else
      for (const key of Object.keys(v).reverse())
        stack.push({ value: (v as Record<string, unknown>)[key], key, parent: next });
  }
  return undefined;
};

const isPlain = (v: object): boolean => {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/**
 * Any JSON value (`firstNonJson`), in place of `z.json()`, whose schema is recursive: a schema with a
 * reference cycle cannot be compiled (`z.compile`), and the schemas the log is read with are
 * (`src/node/taskCodec.ts`). The value is kept as given, not copied. Unlike `z.json()`, a value that
 * contains itself is refused (the log could not hold it), and so is an object of another prototype.
 */
export const JsonValue = z
  .custom<JsonValue>()
  .superRefine((value, ctx) => {
    const path = firstNonJson(value);
    if (path !== undefined)
      ctx.addIssue({
        code: 'custom',
        path,
        message: 'must be JSON: null, a boolean, a finite number, a string, or an array or object of them',
      });
  })
  .meta({ description: 'any JSON value: null, a boolean, a number, a string, or an array or object of them' });
