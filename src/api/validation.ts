import { z } from 'zod';
import { ValidationError } from '../../domain/errors/index.js';

/** Query and body checks of the API beyond the domain's schemas. */

/**
 * A whole number in a query string. Stricter than `z.coerce.number()`, which reads `""` and `" "` as
 * 0 and `0x10` as 16.
 */
export const QueryInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

/** A request body that must be a JSON object (a task document, an action's options). */
export const bodyObject = (body: unknown, what: string): Record<string, unknown> => {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError([{ path: 'body', message: `must be ${what} (a JSON object)` }]);
  }
  return body as Record<string, unknown>;
};
