import { z } from 'zod';

/** An instant as ISO-8601 text with an offset (`2026-03-29T01:30:00Z`), or epoch milliseconds. */
export const Instant = z.union([
  z.iso.datetime({ offset: true }),
  z
    .number()
    .int()
    .nonnegative()
    .transform((millis) => new Date(millis).toISOString()),
]);

export const toMillis = (iso: string): number => Date.parse(iso);
export const toIso = (millis: number): string => new Date(millis).toISOString();
