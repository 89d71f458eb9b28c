import ms from 'ms';
import { z } from 'zod';

/** Longest duration accepted anywhere: instants derived from it (deadlines, retries) stay representable. */
export const MAX_DURATION_MS = 100 * 365 * 86_400_000;

/**
 * A duration as users write it: `"500ms"`, `"1s"`, `"15m"`, `"2h"`, `"1d"`, or a number of milliseconds.
 * Parsed once at the boundary into integer milliseconds.
 */
export const Duration = z.union([z.number(), z.string()]).transform((value, ctx): number => {
  const parsed = typeof value === 'number' ? value : parseDurationText(value);
  if (parsed !== undefined && parsed > MAX_DURATION_MS) {
    ctx.addIssue({
      code: 'custom',
      message: `must be at most 100 years (${MAX_DURATION_MS} ms), got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  if (parsed === undefined || !Number.isFinite(parsed) || !Number.isInteger(parsed) || parsed < 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration such as "500ms", "1s", "15m" or a whole number of milliseconds, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return parsed;
});

const parseDurationText = (text: string): number | undefined => {
  const trimmed = text.trim();
  if (!/^\d+(\.\d+)?\s*(ms|s|m|h|d|w)?$/i.test(trimmed)) return undefined;
  const value = ms(trimmed as ms.StringValue);
  return Number.isNaN(value) ? undefined : Math.round(value);
};
