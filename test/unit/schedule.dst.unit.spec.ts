import { Cron } from 'croner';
import { describe, expect, it } from 'vitest';
import { scheduleOf, type Schedule } from '../../domain/task/schedule.js';
import { ScheduleSpec } from '../../domain/task/spec.js';

/*
 * DST (design §5): a wall time in a spring-forward gap fires once, at the instant the clock lands after
 * the gap; a wall time a fall-back repeats fires once, at its first occurrence; `every` ignores DST.
 * Transition instants (2026):
 *   Europe/Berlin        spring 03-29T01:00Z (02:00 → 03:00)        fall 10-25T01:00Z (03:00 → 02:00)
 *   America/New_York     spring 03-08T07:00Z (02:00 → 03:00)        fall 11-01T06:00Z (02:00 → 01:00)
 *   Australia/Sydney     spring 10-03T16:00Z (02:00 → 03:00)        fall 04-04T16:00Z (03:00 → 02:00)
 *   Australia/Lord_Howe  spring 10-03T15:30Z (02:00 → 02:30)        fall 04-04T15:00Z (02:00 → 01:30)
 *   America/St_Johns     spring 03-08T05:30Z (02:00 → 03:00)        fall 11-01T04:30Z (02:00 → 01:00)
 *   America/Santiago     spring 09-06T04:00Z (00:00 → 01:00)        fall 04-05T03:00Z (00:00 → 23:00)
 *   Asia/Kolkata         +05:30 all year
 */

const ms = (iso: string): number => Date.parse(iso);
const iso = (t: number): string => new Date(t).toISOString().replace('.000Z', 'Z');
const MINUTE = 60_000;
const HOUR = 3_600_000;

const cron = (expression: string, timezone: string): Schedule =>
  scheduleOf(ScheduleSpec.parse({ cron: expression, timezone }), 0);

const ticksAfter = (schedule: Schedule, from: string, n: number): string[] => {
  const out: string[] = [];
  for (let t: number | null = ms(from); out.length < n;) {
    t = schedule.next(t);
    if (t === null) break;
    out.push(iso(t));
  }
  return out;
};

/** Ticks in [from, to), local midnight to local midnight, say. */
const ticksIn = (schedule: Schedule, from: string, to: string): number[] =>
  schedule.latest(ms(from) - 1, ms(to) - 1, 10_000).ticks;

describe('Europe/Berlin (+01:00, +02:00 in summer)', () => {
  const zone = 'Europe/Berlin';

  it('02:30 does not exist on 29 March: it fires once, at 03:00 CEST', () => {
    expect(ticksAfter(cron('0 30 2 * * *', zone), '2026-03-28T00:00:00Z', 3)).toEqual([
      '2026-03-28T01:30:00Z',
      '2026-03-29T01:00:00Z',
      '2026-03-30T00:30:00Z',
    ]);
  });

  it('02:30 happens twice on 25 October: it fires once, at the first (CEST)', () => {
    expect(ticksAfter(cron('0 30 2 * * *', zone), '2026-10-24T00:00:00Z', 3)).toEqual([
      '2026-10-24T00:30:00Z',
      '2026-10-25T00:30:00Z',
      '2026-10-26T01:30:00Z',
    ]);
  });

  it('hourly: each wall-clock hour fires once, 23 ticks on the short day and 24 on the long one', () => {
    const hourly = cron('0 0 * * * *', zone);
    expect(ticksAfter(hourly, '2026-03-28T23:30:00Z', 3)).toEqual([
      '2026-03-29T00:00:00Z',
      '2026-03-29T01:00:00Z',
      '2026-03-29T02:00:00Z',
    ]);
    expect(ticksAfter(hourly, '2026-10-24T23:30:00Z', 3)).toEqual([
      '2026-10-25T00:00:00Z',
      '2026-10-25T02:00:00Z',
      '2026-10-25T03:00:00Z',
    ]);
    expect(ticksIn(hourly, '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z')).toHaveLength(23);
    expect(ticksIn(hourly, '2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z')).toHaveLength(24);
  });

  it('an hourly tick in the gap (02:15) is not lost: it fires when the clock lands at 03:00', () => {
    expect(ticksAfter(cron('0 15 * * * *', zone), '2026-03-29T00:00:00Z', 3)).toEqual([
      '2026-03-29T00:15:00Z',
      '2026-03-29T01:00:00Z',
      '2026-03-29T01:15:00Z',
    ]);
  });

  it('every minute: the gap collapses into the landing minute, the repeated hour does not fire again', () => {
    const minutely = cron('* * * * *', zone);
    expect(ticksAfter(minutely, '2026-03-29T00:58:00Z', 3)).toEqual([
      '2026-03-29T00:59:00Z',
      '2026-03-29T01:00:00Z',
      '2026-03-29T01:01:00Z',
    ]);
    expect(ticksAfter(minutely, '2026-10-25T00:58:00Z', 3)).toEqual([
      '2026-10-25T00:59:00Z',
      '2026-10-25T02:00:00Z',
      '2026-10-25T02:01:00Z',
    ]);
    expect(
      cron('* * * * *', zone).latest(ms('2026-10-24T22:00:00Z') - 1, ms('2026-10-25T23:00:00Z') - 1, 0).total,
    ).toBe(24 * 60);
    expect(
      cron('* * * * *', zone).latest(ms('2026-03-28T23:00:00Z') - 1, ms('2026-03-29T22:00:00Z') - 1, 0).total,
    ).toBe(23 * 60);
  });

  it('asked from inside the repeated hour, next skips to the first wall time after it', () => {
    expect(ticksAfter(cron('0 */20 * * * *', zone), '2026-10-25T01:10:00Z', 2)).toEqual([
      '2026-10-25T02:00:00Z',
      '2026-10-25T02:20:00Z',
    ]);
  });
});

describe('America/New_York (-05:00, -04:00 in summer)', () => {
  const zone = 'America/New_York';

  it('02:30 on 8 March fires once at 03:00 EDT; 01:30 on 1 November once, at the EDT one', () => {
    expect(ticksAfter(cron('0 30 2 * * *', zone), '2026-03-07T00:00:00Z', 3)).toEqual([
      '2026-03-07T07:30:00Z',
      '2026-03-08T07:00:00Z',
      '2026-03-09T06:30:00Z',
    ]);
    expect(ticksAfter(cron('0 30 1 * * *', zone), '2026-10-31T00:00:00Z', 3)).toEqual([
      '2026-10-31T05:30:00Z',
      '2026-11-01T05:30:00Z',
      '2026-11-02T06:30:00Z',
    ]);
  });

  it('hourly through both transitions neither loses nor doubles a wall-clock hour', () => {
    const hourly = cron('0 0 * * * *', zone);
    expect(ticksAfter(hourly, '2026-03-08T05:30:00Z', 3)).toEqual([
      '2026-03-08T06:00:00Z',
      '2026-03-08T07:00:00Z',
      '2026-03-08T08:00:00Z',
    ]);
    expect(ticksAfter(hourly, '2026-11-01T03:30:00Z', 4)).toEqual([
      '2026-11-01T04:00:00Z',
      '2026-11-01T05:00:00Z',
      '2026-11-01T07:00:00Z',
      '2026-11-01T08:00:00Z',
    ]);
    expect(ticksIn(hourly, '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z')).toHaveLength(23);
    expect(ticksIn(hourly, '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z')).toHaveLength(24);
  });
});

describe('Australia/Sydney (southern hemisphere: +11:00 in summer, +10:00 in winter)', () => {
  const zone = 'Australia/Sydney';

  it('02:30 on 4 October (spring) fires once at 03:00 AEDT; on 5 April (autumn) once, at the AEDT one', () => {
    expect(ticksAfter(cron('0 30 2 * * *', zone), '2026-10-02T00:00:00Z', 3)).toEqual([
      '2026-10-02T16:30:00Z',
      '2026-10-03T16:00:00Z',
      '2026-10-04T15:30:00Z',
    ]);
    expect(ticksAfter(cron('0 30 2 * * *', zone), '2026-04-03T00:00:00Z', 3)).toEqual([
      '2026-04-03T15:30:00Z',
      '2026-04-04T15:30:00Z',
      '2026-04-05T16:30:00Z',
    ]);
  });

  it('hourly through both transitions', () => {
    const hourly = cron('0 0 * * * *', zone);
    expect(ticksAfter(hourly, '2026-10-03T14:30:00Z', 3)).toEqual([
      '2026-10-03T15:00:00Z',
      '2026-10-03T16:00:00Z',
      '2026-10-03T17:00:00Z',
    ]);
    expect(ticksAfter(hourly, '2026-04-04T14:30:00Z', 3)).toEqual([
      '2026-04-04T15:00:00Z',
      '2026-04-04T17:00:00Z',
      '2026-04-04T18:00:00Z',
    ]);
    expect(ticksIn(hourly, '2026-10-03T14:00:00Z', '2026-10-04T13:00:00Z')).toHaveLength(23);
    expect(ticksIn(hourly, '2026-04-04T13:00:00Z', '2026-04-05T14:00:00Z')).toHaveLength(24);
  });
});

describe('Australia/Lord_Howe (+10:30, +11:00 in summer: a 30-minute shift)', () => {
  const zone = 'Australia/Lord_Howe';

  it('02:15 on 4 October is in the 02:00-02:30 gap: once, at 02:30; 01:45 on 5 April once, at the first', () => {
    expect(ticksAfter(cron('0 15 2 * * *', zone), '2026-10-02T00:00:00Z', 3)).toEqual([
      '2026-10-02T15:45:00Z',
      '2026-10-03T15:30:00Z',
      '2026-10-04T15:15:00Z',
    ]);
    expect(ticksAfter(cron('0 45 1 * * *', zone), '2026-04-03T00:00:00Z', 3)).toEqual([
      '2026-04-03T14:45:00Z',
      '2026-04-04T14:45:00Z',
      '2026-04-05T15:15:00Z',
    ]);
  });

  it('hourly: 02:00 lands at 02:30; in autumn 02:00 first happens after the repeated half hour', () => {
    const hourly = cron('0 0 * * * *', zone);
    expect(ticksAfter(hourly, '2026-10-03T14:00:00Z', 3)).toEqual([
      '2026-10-03T14:30:00Z',
      '2026-10-03T15:30:00Z',
      '2026-10-03T16:00:00Z',
    ]);
    expect(ticksAfter(hourly, '2026-04-04T13:30:00Z', 3)).toEqual([
      '2026-04-04T14:00:00Z',
      '2026-04-04T15:30:00Z',
      '2026-04-04T16:30:00Z',
    ]);
  });

  it('half-hourly: the repeated 01:30 fires once', () => {
    expect(ticksAfter(cron('0 0,30 * * * *', zone), '2026-04-04T13:45:00Z', 4)).toEqual([
      '2026-04-04T14:00:00Z',
      '2026-04-04T14:30:00Z',
      '2026-04-04T15:30:00Z',
      '2026-04-04T16:00:00Z',
    ]);
  });

  it('every minute', () => {
    const minutely = cron('* * * * *', zone);
    expect(ticksAfter(minutely, '2026-10-03T15:28:00Z', 3)).toEqual([
      '2026-10-03T15:29:00Z',
      '2026-10-03T15:30:00Z',
      '2026-10-03T15:31:00Z',
    ]);
    expect(ticksAfter(minutely, '2026-04-04T14:58:00Z', 3)).toEqual([
      '2026-04-04T14:59:00Z',
      '2026-04-04T15:30:00Z',
      '2026-04-04T15:31:00Z',
    ]);
  });
});

describe('America/St_Johns (-03:30, -02:30 in summer)', () => {
  const zone = 'America/St_Johns';

  it('02:30 on 8 March fires once at 03:00 NDT; 01:30 on 1 November once, at the NDT one', () => {
    expect(ticksAfter(cron('0 30 2 * * *', zone), '2026-03-07T00:00:00Z', 3)).toEqual([
      '2026-03-07T06:00:00Z',
      '2026-03-08T05:30:00Z',
      '2026-03-09T05:00:00Z',
    ]);
    expect(ticksAfter(cron('0 30 1 * * *', zone), '2026-10-31T00:00:00Z', 3)).toEqual([
      '2026-10-31T04:00:00Z',
      '2026-11-01T04:00:00Z',
      '2026-11-02T05:00:00Z',
    ]);
  });

  it('hourly through both transitions', () => {
    const hourly = cron('0 0 * * * *', zone);
    expect(ticksAfter(hourly, '2026-03-08T03:00:00Z', 4)).toEqual([
      '2026-03-08T03:30:00Z',
      '2026-03-08T04:30:00Z',
      '2026-03-08T05:30:00Z',
      '2026-03-08T06:30:00Z',
    ]);
    expect(ticksAfter(hourly, '2026-11-01T02:00:00Z', 4)).toEqual([
      '2026-11-01T02:30:00Z',
      '2026-11-01T03:30:00Z',
      '2026-11-01T05:30:00Z',
      '2026-11-01T06:30:00Z',
    ]);
  });
});

describe('America/Santiago (the clock changes at midnight)', () => {
  it('midnight on 6 September does not exist: it fires once, at 01:00 -03', () => {
    expect(ticksAfter(cron('0 0 0 * * *', 'America/Santiago'), '2026-09-04T12:00:00Z', 3)).toEqual([
      '2026-09-05T04:00:00Z',
      '2026-09-06T04:00:00Z',
      '2026-09-07T03:00:00Z',
    ]);
  });
});

describe('Asia/Kolkata (+05:30, no DST)', () => {
  const zone = 'Asia/Kolkata';

  it('fires at the same UTC time every day, through dates when other zones change', () => {
    expect(ticksAfter(cron('0 30 2 * * *', zone), '2026-03-28T00:00:00Z', 3)).toEqual([
      '2026-03-28T21:00:00Z',
      '2026-03-29T21:00:00Z',
      '2026-03-30T21:00:00Z',
    ]);
    expect(ticksAfter(cron('0 0 * * * *', zone), '2026-10-25T00:00:00Z', 3)).toEqual([
      '2026-10-25T00:30:00Z',
      '2026-10-25T01:30:00Z',
      '2026-10-25T02:30:00Z',
    ]);
    expect(ticksIn(cron('* * * * *', zone), '2026-10-24T18:30:00Z', '2026-10-25T18:30:00Z')).toHaveLength(1_440);
  });
});

describe('every ignores DST', () => {
  it('stays exactly one period apart across every transition above', () => {
    const transitions = [
      '2026-03-29T01:00:00Z',
      '2026-10-25T01:00:00Z',
      '2026-03-08T07:00:00Z',
      '2026-11-01T06:00:00Z',
      '2026-10-03T15:30:00Z',
      '2026-04-04T15:00:00Z',
    ];
    for (const t of transitions) {
      const s = scheduleOf(ScheduleSpec.parse({ every: '1h' }), ms(t) - 2 * HOUR);
      expect(ticksAfter(s, iso(ms(t) - 2 * HOUR - 1), 5)).toEqual([-2, -1, 0, 1, 2].map((k) => iso(ms(t) + k * HOUR)));
    }
  });
});

describe('against an oracle that walks the clock minute by minute', () => {
  // Fires at instant t when t shows a matching wall time for the first time, or when the clock jumped
  // over a matching wall time to land at t. All the transitions here fall on whole minutes.
  const oracle = (expression: string, zone: string, from: number, to: number): number[] => {
    const pattern = new Cron(expression, { utcOffset: 0, mode: '5-or-6-parts' });
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    const wallOf = (t: number): number => {
      const f = Object.fromEntries(format.formatToParts(t).map((p) => [p.type, Number(p.value)]));
      return Date.UTC(f.year ?? 0, (f.month ?? 1) - 1, f.day, f.hour, f.minute);
    };
    const ticks: number[] = [];
    let [previousWall, latestWall] = [wallOf(from - 2 * HOUR - MINUTE), -Infinity];
    for (let t = from - 2 * HOUR; t <= to; t += MINUTE) {
      const wall = wallOf(t);
      let fires = wall > latestWall && pattern.match(new Date(wall));
      for (let skipped = previousWall + MINUTE; skipped < wall && !fires; skipped += MINUTE)
        fires = pattern.match(new Date(skipped));
      if (fires && t >= from) ticks.push(t);
      [previousWall, latestWall] = [wall, Math.max(latestWall, wall)];
    }
    return ticks;
  };

  const transitions: [string, string][] = [
    ['Europe/Berlin', '2026-03-29T01:00:00Z'],
    ['Europe/Berlin', '2026-10-25T01:00:00Z'],
    ['America/New_York', '2026-03-08T07:00:00Z'],
    ['America/New_York', '2026-11-01T06:00:00Z'],
    ['Australia/Sydney', '2026-10-03T16:00:00Z'],
    ['Australia/Sydney', '2026-04-04T16:00:00Z'],
    ['Australia/Lord_Howe', '2026-10-03T15:30:00Z'],
    ['Australia/Lord_Howe', '2026-04-04T15:00:00Z'],
    ['America/St_Johns', '2026-03-08T05:30:00Z'],
    ['America/St_Johns', '2026-11-01T04:30:00Z'],
    ['America/Santiago', '2026-09-06T04:00:00Z'],
    ['America/Santiago', '2026-04-05T03:00:00Z'],
    ['Asia/Kolkata', '2026-03-29T01:00:00Z'],
  ];
  const expressions = [
    '* * * * *',
    '0 */20 * * * *',
    '0 0,30 * * * *',
    '0 15 * * * *',
    '0 30 2 * * *',
    '0 45 0-3 * * *',
    '0 0 0 * * *',
    '0 50 23 * * *',
  ];

  it.each(transitions)('%s around %s: next and latest match the oracle for each pattern', (zone, at) => {
    const [from, to] = [ms(at) - 6 * HOUR, ms(at) + 6 * HOUR];
    for (const expression of expressions) {
      // One day beyond `to`, so that even a daily pattern has a next tick for every x below.
      const beyond = oracle(expression, zone, from, to + 24 * HOUR);
      const expected = beyond.filter((t) => t <= to);
      const s = cron(expression, zone);
      const viaNext: number[] = [];
      for (let t = s.next(from - 1); t !== null && t <= to; t = s.next(t)) viaNext.push(t);
      expect(viaNext.map(iso), expression).toEqual(expected.map(iso));
      const { ticks, total } = s.latest(from - 1, to, 1_000);
      expect(ticks.map(iso), expression).toEqual(expected.map(iso));
      expect(total, expression).toBe(expected.length);

      // From arbitrary instants too, including ones inside a repeated hour.
      for (let x = from + 2 * HOUR; x < to - 2 * HOUR; x += 7 * MINUTE + 1) {
        const label = `${expression} at ${iso(x)}`;
        expect(s.next(x), label).toBe(beyond.find((t) => t > x));
        const inside = expected.filter((t) => t > x - 2 * HOUR && t <= x);
        expect(s.latest(x - 2 * HOUR, x, 3), label).toEqual({ ticks: inside.slice(-3), total: inside.length });
      }
    }
  });
});
