import { z } from 'zod';

/** Latest instant a task may name: the end of year 9999, the last one ISO-8601 writes with four digits. */
export const MAX_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** An instant as ISO-8601 text with an offset (`2026-03-29T01:30:00Z`), or epoch milliseconds. */
export const Instant = z.union([
  z.iso.datetime({ offset: true }),
  z
    .number()
    .int()
    .nonnegative()
    .max(MAX_INSTANT_MS, `must be an instant before the year 10000 (at most ${MAX_INSTANT_MS} ms)`)
    .transform((millis) => new Date(millis).toISOString()),
]);

const digits = (s: string, from: number, to: number): number => {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return n;
};

// The hour (`YYYY-MM-DDTHH:`) last read and its epoch ms: a replay reads several instants per event
// and a fire's decision several (its tick, its deadline a timeout later), mostly of one hour, and
// `Date.UTC` was most of the cost of each.
let readHour = '\u0000';
let readHourMs = Number.NaN;

/**
 * Epoch ms of an ISO instant. The log's own form (`toIso`: `YYYY-MM-DDTHH:mm:ss.sssZ`) is read by hand,
 * several times faster than `Date.parse`, which every replayed event would otherwise pay; anything
 * else (offsets, fewer digits) goes to `Date.parse`.
 */
export const toMillis = (iso: string): number => {
  if (
    iso.length === 24 &&
    iso.charCodeAt(23) === 90 /* Z */ &&
    iso.charCodeAt(10) === 84 /* T */ &&
    iso.charCodeAt(19) === 46 /* . */
  ) {
    if (!iso.startsWith(readHour)) {
      const hourMs = Date.UTC(digits(iso, 0, 4), digits(iso, 5, 7) - 1, digits(iso, 8, 10), digits(iso, 11, 13));
      // `Date.UTC` reads years 0–99 as 1900–1999.
      if (Number.isNaN(hourMs) || iso.charCodeAt(13) !== 58 /* : */ || iso.startsWith('00')) return Date.parse(iso);
      readHour = iso.slice(0, 14);
      readHourMs = hourMs;
    }
    const millis =
      iso.charCodeAt(16) === 58 /* : */
        ? readHourMs + digits(iso, 14, 16) * 60_000 + digits(iso, 17, 19) * 1000 + digits(iso, 20, 23)
        : Number.NaN;
    if (!Number.isNaN(millis)) return millis;
  }
  return Date.parse(iso);
};

const MINUTE_MS = 60_000;
const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

// The node renders a few instants per fire, mostly in the same minute: `Date#toISOString` is the part
// that changes least (`YYYY-MM-DDTHH:mm:`), kept per minute; seconds and milliseconds are appended.
let lastMinute = Number.NaN;
let minutePrefix = '';

/** ISO text of epoch ms, as `Date#toISOString` writes it (`YYYY-MM-DDTHH:mm:ss.sssZ` for years 0–9999). */
export const toIso = (millis: number): string => {
  if (!Number.isInteger(millis) || millis < 0 || millis > MAX_INSTANT_MS) return new Date(millis).toISOString();
  const minute = Math.floor(millis / MINUTE_MS);
  if (minute !== lastMinute) {
    minutePrefix = new Date(minute * MINUTE_MS).toISOString().slice(0, 17);
    lastMinute = minute;
  }
  const rest = millis - minute * MINUTE_MS;
  const seconds = Math.floor(rest / 1_000);
  return `${minutePrefix}${pad2(seconds)}.${pad3(rest - seconds * 1_000)}Z`;
};
