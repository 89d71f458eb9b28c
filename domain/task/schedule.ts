import { Cron, CronPattern } from 'croner';
import { toMillis } from '../time/instant.js';
import type { ScheduleSpec } from './spec.js';

/**
 * When a task's ticks fall, as epoch milliseconds. Pure: the same spec and anchor always give the same
 * ticks, so every node and every replay agrees on them (and on their fire ids).
 */
export interface Schedule {
  /** First tick strictly after `after` (epoch ms), within [startAt, endAt]; null when none remain. */
  next(after: number): number | null;
  /**
   * The most recent `limit` ticks in (after, until], ascending, and `total`: how many ticks the interval holds.
   * `total` is exact for `every` (arithmetic) and for cron over intervals up to a century (counted per
   * matching day, not per tick); null beyond. The ticks cost `limit` steps, however long the interval.
   */
  latest(after: number, until: number, limit: number): { ticks: number[]; total: number | null };
}

/** `anchor`: for `every`, ticks are anchor + k*period (k >= 0), no drift; for `delayAfter`, the single tick anchor + delay
 *  (the caller passes the later of the last completion and the last restart); ignored for cron and at. */
export function scheduleOf(spec: ScheduleSpec, anchor: number): Schedule {
  const window = windowOf(spec);
  if ('cron' in spec) return cronSchedule(compile(spec.cron), zoneOf(spec.timezone), window);
  if ('every' in spec) return everySchedule(spec.every, anchor, window);
  // A delay that would end before startAt waits for it: dropping the only tick would end the task.
  if ('delayAfter' in spec) return singleTick(Math.max(anchor + spec.delayAfter, window.start), window);
  return singleTick(toMillis(spec.at), window);
}

/** undefined when the cron expression is valid for croner (with optional seconds field, 5 or 6 fields), else a human message. */
export function cronProblem(expression: string, timezone: string): string | undefined {
  const fields = expression.trim().split(/\s+/).filter(Boolean);
  if (!fields[0]?.startsWith('@') && fields.length !== 5 && fields.length !== 6) {
    return `must have 5 fields (minute hour day-of-month month day-of-week) or 6 (a seconds field first), got ${fields.length}`;
  }
  let compiled: CompiledCron;
  try {
    compiled = compile(expression);
  } catch (error) {
    const detail = (error instanceof Error ? error.message : String(error)).replace(/^CronPattern:\s*/, '');
    return `${JSON.stringify(expression)} is not a valid cron expression: ${detail}`;
  }
  try {
    zoneOf(timezone);
  } catch {
    return `cannot be evaluated in unknown time zone ${JSON.stringify(timezone)}`;
  }
  // No year field, so a pattern that matches nothing from 1970 to 9999 matches nothing ever.
  const matchesSomeDate = compiled.cron.nextRun(new Date(0)) !== null;
  return matchesSomeDate ? undefined : `${JSON.stringify(expression)} never matches a date (such as 30 February)`;
}

const SECOND = 1_000;
const DAY = 86_400_000;
/** `total` counts at most this far; beyond it the count is null (and `latest` still returns its ticks). */
const MAX_COUNT_SPAN = 100 * 365 * DAY;

interface Window {
  readonly start: number;
  readonly end: number;
}

const windowOf = (spec: ScheduleSpec): Window => {
  const { startAt, endAt }: { startAt?: string; endAt?: string } = 'at' in spec ? {} : spec;
  return {
    start: startAt === undefined ? -Infinity : toMillis(startAt),
    end: endAt === undefined ? Infinity : toMillis(endAt),
  };
};

const singleTick = (tick: number, { start, end }: Window): Schedule => {
  const at = tick >= start && tick <= end ? tick : null;
  return {
    next: (after) => (at !== null && at > after ? at : null),
    latest: (after, until, limit) => {
      const inside = at !== null && at > after && at <= until;
      return { ticks: inside && limit > 0 ? [at] : [], total: inside ? 1 : 0 };
    },
  };
};

const everySchedule = (period: number, anchor: number, { start, end }: Window): Schedule => {
  // Tick k is computed as anchor + k * period, never accumulated, so nothing drifts.
  const firstK = start > anchor ? Math.ceil((start - anchor) / period) : 0;
  const lastK = Math.floor((end - anchor) / period);
  const firstAfter = (t: number): number => Math.max(firstK, Math.floor((t - anchor) / period) + 1);
  const lastUpTo = (t: number): number => Math.min(lastK, Math.floor((t - anchor) / period));
  return {
    next: (after) => {
      const k = firstAfter(after);
      return k <= lastK ? anchor + k * period : null;
    },
    latest: (after, until, limit) => {
      const lo = firstAfter(after);
      const hi = lastUpTo(until);
      const ticks: number[] = [];
      for (let k = Math.max(lo, hi - limit + 1); k <= hi; k++) ticks.push(anchor + k * period);
      return { ticks, total: Math.max(0, hi - lo + 1) };
    },
  };
};

/*
 * Cron. croner evaluates the pattern at UTC offset 0, so it walks the zone's wall clock as if it had no
 * DST ("wall" values below are local date-times encoded as UTC epoch ms). This file maps wall times to
 * instants with our DST rule (design §5), whatever croner's own rule is:
 * - a wall time in a spring-forward gap fires once, at the instant the clock lands (the gap's end);
 * - a wall time that a fall-back repeats fires once, at its first occurrence.
 * So each matching wall time fires exactly once, and ticks are distinct, ascending instants.
 */
const cronSchedule = (
  { wallAfter, wallUpTo, secondsUpTo }: CompiledCron,
  zone: Zone,
  { start, end }: Window,
): Schedule => {
  // Matching wall times in (from, to]: whole days by arithmetic, so the cost is one croner call per matching day.
  const countWalls = (from: number, to: number): number => {
    let count = 0;
    let wall = wallAfter(from);
    while (wall !== null && wall <= to) {
      const day = Math.floor(wall / DAY) * DAY;
      count += secondsUpTo(Math.floor((Math.min(to, day + DAY - 1) - day) / SECOND));
      if (from >= day) count -= secondsUpTo(Math.floor((from - day) / SECOND));
      wall = wallAfter(day + DAY - 1);
    }
    return count;
  };

  // Ticks in (lo, hi], lo < hi.
  const count = (lo: number, hi: number): number | null => {
    if (hi - lo > MAX_COUNT_SPAN) return null;
    const from = lastWallFiredBy(zone, lo);
    const to = lastWallFiredBy(zone, hi);
    let total = countWalls(from, to);
    for (const change of changesIn(zone, lo, hi)) {
      if (change.to <= change.from) continue;
      // The wall times of a gap, and the one it lands on, are one tick.
      const inGap = countWalls(Math.max(from, change.at + change.from - 1), Math.min(to, change.at + change.to));
      if (inGap > 1) total -= inGap - 1;
    }
    return total;
  };

  return {
    next: (after) => {
      const wall = wallAfter(lastWallFiredBy(zone, Math.max(after, start - 1)));
      const tick = wall === null ? null : instantOf(zone, wall);
      return tick !== null && tick <= end ? tick : null;
    },
    latest: (after, until, limit) => {
      const lo = Math.max(after, start - 1);
      const hi = Math.min(until, end);
      if (hi <= lo) return { ticks: [], total: 0 };
      // Walk back from the end: `limit` steps, however many ticks the interval holds.
      const ticks: number[] = [];
      let bound = hi;
      while (ticks.length < limit) {
        const wall = wallUpTo(lastWallFiredBy(zone, bound));
        const tick = wall === null ? null : instantOf(zone, wall);
        if (tick === null || tick <= lo) break;
        ticks.push(tick);
        bound = tick - 1;
      }
      return { ticks: ticks.reverse(), total: count(lo, hi) };
    },
  };
};

interface CompiledCron {
  readonly cron: Cron;
  /** The first matching wall time after `wall`; null when none is left. */
  readonly wallAfter: (wall: number) => number | null;
  /** The last matching wall time at or before `wall`; null when none is. */
  readonly wallUpTo: (wall: number) => number | null;
  /** How many times of day up to and including `secondOfDay` match the pattern's hour, minute and second fields. */
  readonly secondsUpTo: (secondOfDay: number) => number;
}

const MAX_COMPILED = 10_000;
const compiled = new Map<string, CompiledCron>();

const compile = (expression: string): CompiledCron => {
  let found = compiled.get(expression);
  if (!found) {
    const mode = '5-or-6-parts';
    // Parsed as a pattern first: Cron would read an expression containing ":" as a one-off date.
    const pattern = new CronPattern(expression, undefined, { mode });
    const cron = new Cron(expression, { mode, utcOffset: 0 });
    found = {
      cron,
      wallAfter: bySecond((wall) => cron.nextRun(new Date(wall))?.getTime() ?? null),
      // previousRuns returns runs strictly before its reference, to the millisecond.
      wallUpTo: bySecond((wall) => cron.previousRuns(1, new Date(wall + 1))[0]?.getTime() ?? null),
      secondsUpTo: timeOfDayCounter(pattern),
    };
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
    compiled.set(expression, found);
  }
  return found;
};

/** Seconds remembered per pattern and direction. */
const REMEMBERED_SECONDS = 64;

/**
 * `walk` remembered by whole second. A pattern matches whole seconds only (it has no finer field), so
 * the first match after, or the last at or before, any instant of a second is that of the second's
 * start. Every task of one pattern asks about the same few seconds as its ticks come due (10,000 tasks
 * on `* * * * * *`: croner was a tenth of the node's main thread, two walks per fire).
 */
const bySecond = (walk: (wall: number) => number | null): ((wall: number) => number | null) => {
  const known = new Map<number, number | null>();
  return (wall) => {
    const second = Math.floor(wall / SECOND) * SECOND;
    let found = known.get(second);
    if (found === undefined) {
      found = walk(second);
      if (known.size >= REMEMBERED_SECONDS) known.delete(known.keys().next().value as number);
      known.set(second, found);
    }
    return found;
  };
};

// A cron pattern is (matching days) x (matching times of day), so a day's count is arithmetic.
const timeOfDayCounter = ({ hour, minute, second }: CronPattern): ((secondOfDay: number) => number) => {
  const before = (bits: number[]): Int32Array => {
    const sums = new Int32Array(bits.length + 1);
    bits.forEach((bit, i) => (sums[i + 1] = (sums[i] ?? 0) + (bit ? 1 : 0)));
    return sums;
  };
  const [hours, minutes, seconds] = [before(hour), before(minute), before(second)];
  const perMinute = seconds[60] ?? 0;
  const perHour = (minutes[60] ?? 0) * perMinute;
  return (secondOfDay) => {
    const h = Math.floor(secondOfDay / 3600);
    const m = Math.floor(secondOfDay / 60) % 60;
    const s = secondOfDay % 60;
    let n = (hours[h] ?? 0) * perHour;
    if (hour[h]) n += (minutes[m] ?? 0) * perMinute + (minute[m] ? (seconds[s + 1] ?? 0) : 0);
    return n;
  };
};

/*
 * Time zones. Intl gives the wall time of an instant; offsets are sampled once a day and each change is
 * located to the second, per 64-day block, cached. Assumes no zone changes its offset twice within two
 * days (true of tzdata for the modern era).
 */
interface Change {
  readonly at: number;
  readonly from: number;
  readonly to: number;
}
interface Block {
  readonly offset: number;
  readonly changes: readonly Change[];
}
interface Zone {
  /** undefined for UTC, which needs no lookups. */
  readonly format: Intl.DateTimeFormat | undefined;
  readonly blocks: Map<number, Block>;
}

const BLOCK_DAYS = 64;
const BLOCK = BLOCK_DAYS * DAY;
const MAX_BLOCKS_PER_ZONE = 4_096;
const MAX_ZONES = 1_000;
const zones = new Map<string, Zone>();

const zoneOf = (name: string): Zone => {
  let zone = zones.get(name);
  if (!zone) {
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    zone = { format: format.resolvedOptions().timeZone === 'UTC' ? undefined : format, blocks: new Map() };
    if (zones.size >= MAX_ZONES) zones.clear();
    zones.set(name, zone);
  }
  return zone;
};

/** Whether the runtime knows the time zone `name` (a known one is then kept for the schedules that use it). */
export const isTimeZone = (name: string): boolean => {
  try {
    zoneOf(name);
    return true;
  } catch {
    return false;
  }
};

const WALL_FIELDS = /(\d+)\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)/;

/** Offset (wall minus instant, ms) at `instant`, a whole second. */
const intlOffset = (format: Intl.DateTimeFormat, instant: number): number => {
  const f = WALL_FIELDS.exec(format.format(instant));
  if (!f) throw new Error(`unexpected Intl output for ${instant}`);
  return Date.UTC(Number(f[3]), Number(f[1]) - 1, Number(f[2]), Number(f[4]), Number(f[5]), Number(f[6])) - instant;
};

const blockAt = (zone: Zone, format: Intl.DateTimeFormat, n: number): Block => {
  let block = zone.blocks.get(n);
  if (!block) {
    const start = n * BLOCK;
    const changes: Change[] = [];
    const offset = intlOffset(format, start);
    let [previous, previousOffset] = [start, offset];
    for (let day = 1; day <= BLOCK_DAYS; day++) {
      const sample = day === BLOCK_DAYS ? start + BLOCK - SECOND : start + day * DAY;
      const sampled = intlOffset(format, sample);
      if (sampled !== previousOffset) {
        // Binary search for the first second with the new offset.
        let [lo, hi] = [previous, sample];
        while (hi - lo > SECOND) {
          const mid = lo + Math.floor((hi - lo) / (2 * SECOND)) * SECOND;
          if (intlOffset(format, mid) === previousOffset) lo = mid;
          else hi = mid;
        }
        changes.push({ at: hi, from: previousOffset, to: sampled });
      }
      [previous, previousOffset] = [sample, sampled];
    }
    block = { offset, changes };
    if (zone.blocks.size >= MAX_BLOCKS_PER_ZONE) zone.blocks.clear();
    zone.blocks.set(n, block);
  }
  return block;
};

const offsetAt = (zone: Zone, instant: number): number => {
  if (!zone.format) return 0;
  const block = blockAt(zone, zone.format, Math.floor(instant / BLOCK));
  let offset = block.offset;
  for (const change of block.changes) {
    if (instant < change.at) break;
    offset = change.to;
  }
  return offset;
};

/** Offset changes at instants in (lo, hi], ascending. */
const changesIn = (zone: Zone, lo: number, hi: number): Change[] => {
  const found: Change[] = [];
  if (!zone.format) return found;
  for (let n = Math.floor(lo / BLOCK); n <= Math.floor(hi / BLOCK); n++) {
    found.push(...blockAt(zone, zone.format, n).changes.filter((change) => change.at > lo && change.at <= hi));
  }
  return found;
};

/** The offset change within a day of `instant`, if any: the only one that can affect its wall time. */
const changeNear = (zone: Zone, instant: number): Change | undefined => {
  if (!zone.format) return undefined;
  for (let n = Math.floor((instant - DAY) / BLOCK); n <= Math.floor((instant + DAY) / BLOCK); n++) {
    for (const change of blockAt(zone, zone.format, n).changes) {
      if (change.at > instant - DAY && change.at <= instant + DAY) return change;
    }
  }
  return undefined;
};

/** The instant a wall time fires: its first occurrence, or the end of the gap it falls in. */
const instantOf = (zone: Zone, wall: number): number => {
  const change = changeNear(zone, wall);
  if (!change) return wall - offsetAt(zone, wall);
  if (wall < change.at + change.from) return wall - change.from;
  if (wall < change.at + change.to) return change.at;
  return wall - change.to;
};

/**
 * The bound such that a wall time fires at or before `instant` exactly when it is <= the bound. instantOf
 * never decreases as the wall time grows, so this is where `next` starts and `latest` walks back from.
 */
const lastWallFiredBy = (zone: Zone, instant: number): number => {
  const change = changeNear(zone, instant);
  if (!change) return instant + offsetAt(zone, instant);
  if (instant < change.at) return instant + change.from;
  // During a fall-back's second pass, the wall times it repeats fired on the first.
  return Math.max(instant + change.to, change.at + change.from - 1);
};
