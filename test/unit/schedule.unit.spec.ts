import { describe, expect, it } from 'vitest';
import { Cron } from 'croner';
import { cronProblem, scheduleOf, type Schedule } from '../../domain/task/schedule.js';
import { ScheduleSpec, TaskSpec, type TaskSpecInput } from '../../domain/task/spec.js';

const ms = (iso: string): number => Date.parse(iso);
const iso = (t: number): string => new Date(t).toISOString();
const S = 1_000;

const scheduleFor = (input: TaskSpecInput['schedule'], anchor = 0): Schedule =>
  scheduleOf(ScheduleSpec.parse(input), anchor);

/** The first `n` ticks after `from`, by repeated `next`. */
const ticksAfter = (schedule: Schedule, from: string | number, n: number): string[] => {
  const out: string[] = [];
  for (let t: number | null = typeof from === 'string' ? ms(from) : from; out.length < n;) {
    t = schedule.next(t);
    if (t === null) break;
    out.push(iso(t));
  }
  return out;
};

describe('cron schedules', () => {
  it('takes an optional seconds field: 6 fields fire on seconds, 5 fields on whole minutes', () => {
    expect(ticksAfter(scheduleFor({ cron: '*/20 * * * * *' }), '2026-01-01T00:00:00Z', 4)).toEqual([
      '2026-01-01T00:00:20.000Z',
      '2026-01-01T00:00:40.000Z',
      '2026-01-01T00:01:00.000Z',
      '2026-01-01T00:01:20.000Z',
    ]);
    // 2026-01-02 is a Friday: the weekday pattern skips to Monday.
    expect(ticksAfter(scheduleFor({ cron: '30 9 * * 1-5' }), '2026-01-02T00:00:00Z', 3)).toEqual([
      '2026-01-02T09:30:00.000Z',
      '2026-01-05T09:30:00.000Z',
      '2026-01-06T09:30:00.000Z',
    ]);
    expect(ticksAfter(scheduleFor({ cron: '@hourly' }), '2026-01-01T10:59:59Z', 1)).toEqual([
      '2026-01-01T11:00:00.000Z',
    ]);
  });

  it('next is strictly after its argument, at millisecond precision', () => {
    const s = scheduleFor({ cron: '*/15 * * * * *' });
    expect(iso(s.next(ms('2026-01-01T00:00:14.999Z')) ?? 0)).toBe('2026-01-01T00:00:15.000Z');
    expect(iso(s.next(ms('2026-01-01T00:00:15.000Z')) ?? 0)).toBe('2026-01-01T00:00:30.000Z');
    expect(iso(s.next(ms('2026-01-01T00:00:15.001Z')) ?? 0)).toBe('2026-01-01T00:00:30.000Z');
  });

  it('reads the fields in the IANA time zone of the schedule (UTC by default)', () => {
    const nineAm = (timezone?: string): string[] =>
      ticksAfter(scheduleFor({ cron: '0 9 * * *', timezone }), '2026-01-15T00:00:00Z', 2);
    expect(nineAm()).toEqual(['2026-01-15T09:00:00.000Z', '2026-01-16T09:00:00.000Z']);
    expect(nineAm('America/New_York')).toEqual(['2026-01-15T14:00:00.000Z', '2026-01-16T14:00:00.000Z']);
    expect(nineAm('Asia/Tokyo')).toEqual(['2026-01-16T00:00:00.000Z', '2026-01-17T00:00:00.000Z']);
    expect(nineAm('Asia/Kolkata')).toEqual(['2026-01-15T03:30:00.000Z', '2026-01-16T03:30:00.000Z']);
    expect(nineAm('Australia/Sydney')).toEqual(['2026-01-15T22:00:00.000Z', '2026-01-16T22:00:00.000Z']);
  });

  it('day-of-month and day-of-week combine with OR when both are restricted, as in Vixie cron', () => {
    // The 13th, or any Friday: 2026-02-06 and 2026-02-13 are Fridays.
    expect(ticksAfter(scheduleFor({ cron: '0 0 13 * 5' }), '2026-02-01T00:00:00Z', 3)).toEqual([
      '2026-02-06T00:00:00.000Z',
      '2026-02-13T00:00:00.000Z',
      '2026-02-20T00:00:00.000Z',
    ]);
  });
});

describe('every (fixed rate)', () => {
  it('ticks at anchor + k * period, without drift over 10,000 ticks', () => {
    const anchor = ms('2026-01-01T00:00:00.123Z');
    const period = 7_777;
    const s = scheduleFor({ every: period }, anchor);
    let t = anchor - 1;
    for (let k = 0; k < 10_000; k++) {
      const next = s.next(t);
      if (next !== anchor + k * period) expect.fail(`tick ${k} is ${next}, expected ${anchor + k * period}`);
      t = next;
    }
    expect(s.next(t)).toBe(anchor + 10_000 * period);
    // Any instant between ticks leads to the next grid point, not to instant + period.
    expect(s.next(anchor + 5_000 * period + 1)).toBe(anchor + 5_001 * period);
  });

  it('the anchor itself is the first tick; nothing before it', () => {
    const s = scheduleFor({ every: '1m' }, ms('2026-01-01T12:00:30Z'));
    expect(ticksAfter(s, '2020-01-01T00:00:00Z', 2)).toEqual(['2026-01-01T12:00:30.000Z', '2026-01-01T12:01:30.000Z']);
    expect(s.latest(0, ms('2026-01-01T12:00:29Z'), 10)).toEqual({ ticks: [], total: 0 });
  });
});

describe('delayAfter and at (one tick)', () => {
  it('delayAfter: the single tick anchor + delay', () => {
    const s = scheduleFor({ delayAfter: '5m' }, ms('2026-01-01T10:00:00Z'));
    expect(ticksAfter(s, 0, 3)).toEqual(['2026-01-01T10:05:00.000Z']);
    expect(s.next(ms('2026-01-01T10:05:00Z'))).toBeNull();
    expect(s.latest(0, ms('2026-01-02T00:00:00Z'), 10)).toEqual({ ticks: [ms('2026-01-01T10:05:00Z')], total: 1 });
  });

  it('delayAfter waits for startAt rather than losing its tick, and has none past endAt', () => {
    const anchor = ms('2026-01-01T10:00:00Z');
    expect(ticksAfter(scheduleFor({ delayAfter: '5m', startAt: '2026-01-02T00:00:00Z' }, anchor), 0, 2)).toEqual([
      '2026-01-02T00:00:00.000Z',
    ]);
    expect(scheduleFor({ delayAfter: '5m', endAt: '2026-01-01T10:04:59Z' }, anchor).next(0)).toBeNull();
  });

  it('at: one tick at that instant', () => {
    const s = scheduleFor({ at: '2026-03-29T01:30:00+02:00' }, 12345);
    expect(ticksAfter(s, 0, 3)).toEqual(['2026-03-28T23:30:00.000Z']);
    expect(s.next(ms('2026-03-28T23:30:00Z'))).toBeNull();
    expect(s.latest(ms('2026-03-28T23:29:59Z'), ms('2026-03-28T23:30:00Z'), 5)).toEqual({
      ticks: [ms('2026-03-28T23:30:00Z')],
      total: 1,
    });
    expect(s.latest(ms('2026-03-28T23:30:00Z'), ms('2026-03-29T00:00:00Z'), 5)).toEqual({ ticks: [], total: 0 });
  });
});

describe('startAt and endAt (inclusive bounds)', () => {
  it('cron: a tick exactly at startAt or endAt is included, none outside', () => {
    const s = scheduleFor({ cron: '0 * * * *', startAt: '2026-01-01T10:00:00Z', endAt: '2026-01-01T12:00:00Z' });
    expect(ticksAfter(s, 0, 10)).toEqual([
      '2026-01-01T10:00:00.000Z',
      '2026-01-01T11:00:00.000Z',
      '2026-01-01T12:00:00.000Z',
    ]);
    expect(s.latest(0, ms('2030-01-01T00:00:00Z'), 2)).toEqual({
      ticks: [ms('2026-01-01T11:00:00Z'), ms('2026-01-01T12:00:00Z')],
      total: 3,
    });
    expect(s.latest(ms('2026-01-01T12:00:00Z'), ms('2030-01-01T00:00:00Z'), 2)).toEqual({ ticks: [], total: 0 });
  });

  it('every: startAt between grid points starts at the next one; the grid stays on the anchor', () => {
    const s = scheduleFor(
      { every: '10s', startAt: '2026-01-01T00:00:25Z', endAt: '2026-01-01T00:01:00Z' },
      ms('2026-01-01T00:00:00Z'),
    );
    expect(ticksAfter(s, 0, 10)).toEqual([
      '2026-01-01T00:00:30.000Z',
      '2026-01-01T00:00:40.000Z',
      '2026-01-01T00:00:50.000Z',
      '2026-01-01T00:01:00.000Z',
    ]);
    expect(s.latest(0, ms('2027-01-01T00:00:00Z'), 10).total).toBe(4);
  });
});

describe('latest', () => {
  it('returns the most recent `limit` ticks ascending, and how many the interval holds', () => {
    const every = scheduleFor({ every: '1m' }, ms('2026-01-01T00:00:00Z'));
    expect(every.latest(ms('2026-01-01T00:00:00Z'), ms('2026-01-01T01:00:00Z'), 3)).toEqual({
      ticks: [ms('2026-01-01T00:58:00Z'), ms('2026-01-01T00:59:00Z'), ms('2026-01-01T01:00:00Z')],
      total: 60,
    });
    const cron = scheduleFor({ cron: '0 * * * *' });
    expect(cron.latest(ms('2026-01-01T00:00:00Z'), ms('2026-01-01T05:30:00Z'), 2)).toEqual({
      ticks: [ms('2026-01-01T04:00:00Z'), ms('2026-01-01T05:00:00Z')],
      total: 5,
    });
    // A limit above the total returns every tick; a limit of 0 only counts.
    expect(cron.latest(ms('2026-01-01T00:00:00Z'), ms('2026-01-01T02:00:00Z'), 100).ticks.map(iso)).toEqual([
      '2026-01-01T01:00:00.000Z',
      '2026-01-01T02:00:00.000Z',
    ]);
    expect(cron.latest(ms('2026-01-01T00:00:00Z'), ms('2026-01-01T02:00:00Z'), 0)).toEqual({ ticks: [], total: 2 });
  });

  it('empty intervals hold nothing', () => {
    const cron = scheduleFor({ cron: '0 0 * * *' });
    expect(cron.latest(ms('2026-01-01T00:00:00Z'), ms('2026-01-01T23:59:59Z'), 5)).toEqual({ ticks: [], total: 0 });
    expect(cron.latest(ms('2026-01-02T00:00:00Z'), ms('2026-01-01T00:00:00Z'), 5)).toEqual({ ticks: [], total: 0 });
    const every = scheduleFor({ every: '1h' }, 0);
    expect(every.latest(ms('2026-01-01T00:00:00Z'), ms('2026-01-01T00:59:59Z'), 5)).toEqual({ ticks: [], total: 0 });
    expect(every.latest(ms('2026-01-01T00:00:00Z'), ms('2026-01-01T00:00:00Z'), 5)).toEqual({ ticks: [], total: 0 });
  });

  it('is fast on huge intervals: every second for ten years, exact total', () => {
    const after = ms('2016-01-01T00:00:00Z');
    const until = ms('2026-01-01T00:00:00Z');
    const started = performance.now();
    const utc = scheduleFor({ cron: '* * * * * *' }).latest(after, until, 100);
    // Berlin loses one hour of ticks per year: its fall-back repeat fires once.
    const berlin = scheduleFor({ cron: '* * * * * *', timezone: 'Europe/Berlin' }).latest(after, until, 100);
    const every = scheduleFor({ every: '100ms' }, 0).latest(0, until, 100);
    expect(performance.now() - started).toBeLessThan(1_500);

    expect(utc.total).toBe((until - after) / S);
    expect(utc.ticks).toHaveLength(100);
    expect(iso(utc.ticks[0] ?? 0)).toBe('2025-12-31T23:58:21.000Z');
    expect(iso(utc.ticks[99] ?? 0)).toBe('2026-01-01T00:00:00.000Z');
    expect(berlin.total).toBe((until - after) / S - 10 * 3_600);
    expect(berlin.ticks).toEqual(utc.ticks);
    expect(every.total).toBe(until / 100);
    expect(every.ticks.at(-1)).toBe(until);
  });

  it('agrees with enumeration by next, ticks and total', () => {
    const cases: [TaskSpecInput['schedule'], string, string][] = [
      [{ cron: '*/7 * * * * *' }, '2026-01-01T00:00:00Z', '2026-01-01T00:30:00.500Z'],
      [{ cron: '0 */5 9-17 * * 1-5', timezone: 'America/New_York' }, '2026-03-06T00:00:00Z', '2026-03-10T00:00:00Z'],
      [{ cron: '0 0 L * *' }, '2025-01-01T00:00:00Z', '2026-12-31T00:00:00Z'],
      [
        { cron: '30 */2 * * *', timezone: 'Europe/Berlin', startAt: '2026-10-24T10:10:00Z' },
        '2026-10-20T00:00:00Z',
        '2026-10-27T00:00:00Z',
      ],
    ];
    for (const [input, from, to] of cases) {
      const s = scheduleFor(input);
      const all: number[] = [];
      for (let t = s.next(ms(from)); t !== null && t <= ms(to); t = s.next(t)) all.push(t);
      expect(all.length).toBeGreaterThan(3);
      for (const limit of [1, 3, all.length + 5]) {
        expect(s.latest(ms(from), ms(to), limit)).toEqual({ ticks: all.slice(-limit), total: all.length });
      }
    }
  });

  it('total is null past the counting span (a century) for cron, exact for every', () => {
    const cron = scheduleFor({ cron: '0 0 * * *' }).latest(0, ms('2100-01-01T00:00:00Z'), 1);
    expect(cron).toEqual({ ticks: [ms('2100-01-01T00:00:00Z')], total: null });
    expect(scheduleFor({ every: '1d' }, 0).latest(0, ms('2100-01-01T00:00:00Z'), 1).total).toBe(47_482);
  });
});

describe('cronProblem', () => {
  it('accepts 5 and 6 fields, nicknames and croner extensions', () => {
    for (const ok of [
      '* * * * *',
      '*/5 * * * * *',
      '0 9 * * MON-FRI',
      '@daily',
      '0 0 L * *',
      '0 0 * * FRI#2',
      '0 0 ? * *',
    ]) {
      expect(cronProblem(ok, 'Europe/Berlin'), ok).toBeUndefined();
    }
  });

  it('names the problem', () => {
    expect(cronProblem('* * * *', 'UTC')).toBe(
      'must have 5 fields (minute hour day-of-month month day-of-week) or 6 (a seconds field first), got 4',
    );
    expect(cronProblem('0 0 0 * * * 2026', 'UTC')).toMatch(/must have 5 fields .* got 7/);
    expect(cronProblem('61 * * * *', 'UTC')).toBe(
      '"61 * * * *" is not a valid cron expression: Invalid value for minute: 61',
    );
    expect(cronProblem('*/0 * * * *', 'UTC')).toBe(
      '"*/0 * * * *" is not a valid cron expression: Syntax error, illegal stepping: 0',
    );
    expect(cronProblem('0 12:00 * * *', 'UTC')).toMatch(/is not a valid cron expression: .*illegal characters/);
    expect(cronProblem('0 0 30 2 *', 'UTC')).toBe('"0 0 30 2 *" never matches a date (such as 30 February)');
    expect(cronProblem('0 0 * * *', 'Mars/Olympus_Mons')).toBe(
      'cannot be evaluated in unknown time zone "Mars/Olympus_Mons"',
    );
  });

  it('makes a bad cron a validation error at schedule.cron of the task document', () => {
    const result = TaskSpec.safeParse({
      id: 't1',
      schedule: { cron: '0 25 * * *', timezone: 'Europe/Berlin' },
      target: { topic: 'jobs' },
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues).toEqual([
      expect.objectContaining({
        path: ['schedule', 'cron'],
        message: '"0 25 * * *" is not a valid cron expression: Invalid value for hour: 25',
      }),
    ]);
  });
});

describe('cron walks remembered per second', () => {
  // What croner itself says, asked afresh every time (UTC: wall times are instants).
  const fresh = (cron: string) => new Cron(cron, { mode: '5-or-6-parts', utcOffset: 0 });
  const T = Date.UTC(2026, 11, 7, 23, 59, 58);

  it.each(['* * * * * *', '*/7 * * * * *', '30 2 * * *', '0 0 1 * *', '59 59 23 * * *'])(
    '%s: next and latest from any millisecond agree with croner asked afresh',
    (cron) => {
      const schedule = scheduleFor({ cron, timezone: 'UTC' });
      const croner = fresh(cron);
      // The same seconds asked again and again at other milliseconds, as thousands of tasks of one pattern do.
      for (let i = 0; i < 3_000; i++) {
        const at = T + Math.floor(i / 7) * 997 + ((i * 389) % 1_000) - 50_000;
        expect(schedule.next(at), `next(${at})`).toBe(croner.nextRun(new Date(at))?.getTime() ?? null);
        const [last] = schedule.latest(at - 400 * 86_400_000, at, 1).ticks;
        expect(last, `latest(…, ${at})`).toBe(croner.previousRuns(1, new Date(at + 1))[0]?.getTime());
      }
    },
  );
});

describe('time zones of a schedule', () => {
  it('an unknown zone is refused every time it is named, naming the field; a known one accepted every time', () => {
    for (let i = 0; i < 3; i++) {
      const refused = TaskSpec.safeParse({
        id: `t${i}`,
        schedule: { cron: '0 0 * * *', timezone: 'Mars/Olympus_Mons' },
        target: { topic: 'x' },
      });
      expect(refused.success).toBe(false);
      expect(refused.error?.issues.map((issue) => [issue.path.join('.'), issue.message])).toContainEqual([
        'schedule.timezone',
        'must be an IANA time zone such as "Europe/Berlin" or "UTC"',
      ]);
      const spec = { id: `t${i}`, schedule: { cron: '0 0 * * *', timezone: 'Europe/Berlin' }, target: { topic: 'x' } };
      expect(TaskSpec.safeParse(spec).success).toBe(true);
    }
  });
});
