import { describe, expect, it } from 'vitest';
import { foldReadModel } from '../../domain/projections/foldReadModel.js';
import { bucketOf, quantile } from '../../domain/projections/histogram.js';
import { statistics } from '../../domain/projections/statistics.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { ProjectionSpec, life, logOf } from './support/projectionFixtures.js';
import { T0, created, iso, spec } from './support/taskFixtures.js';

const S = 1_000;
const MINUTE = 60 * S;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const stats = ProjectionSpec.for(statistics());

/**
 * Four tasks in their first two minutes (T0 is 12:00:00 UTC, so it starts a minute, an hour and a day):
 * - t1 fires 12 ms late, fails (28 ms) and is retried; the retry succeeds (30 ms). The tick due while
 *   it waited for the retry is skipped (overlap: skip).
 * - t2 fires on time, skips a tick while it runs (overlap: skip) and times out after 1.5 s.
 * - t3 (misfire: skip) comes back after 70 s down: its 70 missed ticks are dropped, then it fires
 *   the next one 20 ms late (in the second minute) and succeeds in 50 ms.
 * - t4 (misfire: fire-once) comes back after 10 s down: 9 ticks are coalesced into a catch-up fire
 *   500 ms late, which succeeds in 300 ms; then someone fires it by hand.
 */
const history = (): TaskEvent[] => [
  ...life(spec({ id: 't1', retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } } }), T0)
    .advance(T0 + S + 12)
    .fail(T0 + S + 40)
    .advance(T0 + 2 * S + 60)
    .succeed(T0 + 2 * S + 90).events,
  ...life(spec({ id: 't2', timeout: '1500ms' }), T0)
    .advance(T0 + S)
    .advance(T0 + 2 * S)
    .advance(T0 + 2 * S + 500).events,
  ...life(spec({ id: 't3', misfire: { policy: 'skip', threshold: '100ms' } }), T0)
    .advance(T0 + 70 * S + 500)
    .advance(T0 + 71 * S + 20)
    .succeed(T0 + 71 * S + 70).events,
  ...life(spec({ id: 't4', misfire: { policy: 'fire-once', threshold: '100ms' } }), T0)
    .advance(T0 + 10 * S + 500)
    .succeed(T0 + 10 * S + 800)
    .trigger(T0 + 10 * S + 900).events,
];

const none = { fires: 0, manual: 0, catchUp: 0, retries: 0, succeeded: 0, failed: 0, timedOut: 0, retried: 0 };
const t1 = {
  ...none,
  fires: 1,
  retries: 1,
  retried: 1,
  succeeded: 1,
  skipped: 1,
  misfired: 0,
  latenessCount: 1,
  latenessSumMs: 12,
  latenessMaxMs: 12,
  latenessHistogram: [bucketOf(12), 1],
  durationCount: 1,
  durationSumMs: 30,
  durationMaxMs: 30,
};
const t2 = {
  ...none,
  fires: 1,
  failed: 1,
  timedOut: 1,
  skipped: 1,
  misfired: 0,
  latenessCount: 1,
  latenessSumMs: 0,
  latenessMaxMs: 0,
  durationCount: 1,
  durationSumMs: 1_500,
  durationMaxMs: 1_500,
};
const t3 = {
  ...none,
  fires: 1,
  succeeded: 1,
  skipped: 0,
  misfired: 70,
  latenessCount: 1,
  latenessSumMs: 20,
  durationCount: 1,
  durationSumMs: 50,
};
const t4 = {
  ...none,
  fires: 2,
  manual: 1,
  catchUp: 1,
  succeeded: 1,
  skipped: 0,
  misfired: 9,
  latenessCount: 1,
  latenessSumMs: 500,
  durationCount: 1,
  durationSumMs: 300,
};
/** All four tasks together. */
const everything = {
  fires: 5,
  manual: 1,
  catchUp: 1,
  retries: 1,
  succeeded: 3,
  failed: 1,
  timedOut: 1,
  retried: 1,
  skipped: 2,
  misfired: 79,
};

describe('statistics', () => {
  it('counts per task and for all tasks in UTC hours and days', () => {
    for (const tier of ['hour', 'day'] as const) {
      const start = tier === 'hour' ? T0 : T0 - 12 * HOUR;
      stats.given(history()).then(tier, [
        {
          bucketStart: start,
          taskId: '*',
          ...everything,
          latenessCount: 4,
          latenessSumMs: 532,
          latenessMaxMs: 500,
          durationCount: 4,
          durationSumMs: 1_880,
          durationMaxMs: 1_500,
        },
        { bucketStart: start, taskId: 't1', ...t1 },
        { bucketStart: start, taskId: 't2', ...t2 },
        { bucketStart: start, taskId: 't3', ...t3 },
        { bucketStart: start, taskId: 't4', ...t4 },
      ]);
    }
  });

  it('counts each event in the minute it happened: a fire at its firedAt, the rest at their at', () => {
    const second = T0 + MINUTE;
    stats.given(history()).then('minute', [
      {
        bucketStart: T0,
        taskId: '*',
        ...everything,
        fires: 4,
        succeeded: 2,
        misfired: 9,
        latenessCount: 3,
        latenessSumMs: 512,
        durationCount: 3,
        durationSumMs: 1_830,
      },
      { bucketStart: second, taskId: '*', ...t3 },
    ]);
    // Per task, an hour holds the same counts: minutes are kept for all tasks together only.
    stats.given(history()).then('hour', [
      { bucketStart: T0, taskId: '*' },
      { bucketStart: T0, taskId: 't1', ...t1 },
      { bucketStart: T0, taskId: 't2', ...t2 },
      { bucketStart: T0, taskId: 't3', ...t3 },
      { bucketStart: T0, taskId: 't4', ...t4 },
    ]);
  });

  it('keeps totals since the log began, for all tasks', () => {
    stats.given(history()).then('totals', [{ scope: '*', ...everything }]);
  });

  it('keeps lateness and duration histograms whose quantiles a dashboard reads', () => {
    const all = [...stats.given(history()).rows().hour.values()].find((r) => r.taskId === '*');
    // Lateness 0, 12, 20 and 500 ms; durations 30, 50, 300 and 1,500 ms (not the 28 ms of the retried failure).
    expect(all!.latenessHistogram).toEqual([0, 1, 12, 1, 20, 1, bucketOf(500), 1]);
    expect(quantile(all!.latenessHistogram, 0.5, all!.latenessMaxMs!)).toBe(12);
    expect(quantile(all!.latenessHistogram, 0.99, all!.latenessMaxMs!)).toBe(500);
    expect(quantile(all!.durationHistogram, 0.5, all!.durationMaxMs!)).toBe(50);
    expect(quantile(all!.durationHistogram, 0.99, all!.durationMaxMs!)).toBe(1_500);
  });

  it('counts a tick range whose size is unknown as one tick', () => {
    const range = { v: 1 as const, taskId: 't1', after: iso(T0), until: iso(T0 + 200 * 365 * DAY), count: null };
    stats
      .given([
        created(),
        { type: 'TaskSkipped', data: { ...range, policy: 'skip', at: iso(T0 + S) } },
        { type: 'TaskMisfired', data: { ...range, action: 'dropped', policy: 'skip', at: iso(T0 + S) } },
      ])
      .then('totals', [{ skipped: 1, misfired: 1 }]);
  });

  it('has no rows for a history without fires, outcomes or tick ranges', () => {
    const task = life(spec(), T0)
      .pause(T0 + S)
      .resume(T0 + 2 * S)
      .delete(T0 + 3 * S);
    const model = statistics();
    const reader = { get: () => undefined };
    for (const e of logOf(task.events)) expect(model.evolve(reader, e, { watermark: e.occurredAt })).toEqual([]);
    stats.given(task.events).then('totals', []);
  });

  it('puts an event on the first instant of a day in that day, hour and minute', () => {
    const midnight = Date.UTC(2026, 0, 2);
    const task = life(spec(), midnight - 1_001)
      .advance(midnight - 1)
      .succeed(midnight);
    for (const [tier, width] of [
      ['minute', MINUTE],
      ['hour', HOUR],
      ['day', DAY],
    ] as const) {
      stats.given(task.events).then(tier, [
        { bucketStart: midnight - width, taskId: '*', fires: 1, succeeded: 0 },
        { bucketStart: midnight, taskId: '*', fires: 0, succeeded: 1, durationMaxMs: 1 },
        ...(tier === 'minute'
          ? []
          : [
              { bucketStart: midnight - width, taskId: 't1', fires: 1, succeeded: 0 },
              { bucketStart: midnight, taskId: 't1', fires: 0, succeeded: 1, durationMaxMs: 1 },
            ]),
      ]);
    }
  });

  it('splits at a minute edge inside an hour', () => {
    const edge = T0 + 5 * MINUTE;
    const task = life(spec(), edge - 1_001)
      .advance(edge - 1)
      .succeed(edge);
    stats.given(task.events).then('minute', [
      { bucketStart: edge - MINUTE, taskId: '*', fires: 1 },
      { bucketStart: edge, taskId: '*', succeeded: 1 },
    ]);
    stats.given(task.events).then('hour', [
      { bucketStart: T0, taskId: '*', fires: 1, succeeded: 1 },
      { bucketStart: T0, taskId: 't1', fires: 1, succeeded: 1 },
    ]);
  });

  describe('retention', () => {
    const keep = { minute: 5 * MINUTE, hour: 2 * HOUR, day: 3 * DAY };
    const short = ProjectionSpec.for(statistics({ keepMs: keep }));
    // t1 fires at 12:00:01 and succeeds; t2 fires ten minutes later. t1's success is recorded last.
    const t1Life = life(spec(), T0)
      .advance(T0 + S)
      .succeed(T0 + S + 5).events;
    const t2Life = life(spec({ id: 't2' }), T0).advance(T0 + 10 * MINUTE).events;
    const log = logOf([...t1Life.slice(0, -1), ...t2Life, t1Life.at(-1)!]);

    it('declares its tiers for the runtime to prune by bucketStart', () => {
      expect(statistics({ keepMs: keep }).retention).toEqual({
        minute: { column: 'bucketStart', keepMs: keep.minute },
        hour: { column: 'bucketStart', keepMs: keep.hour },
        day: { column: 'bucketStart', keepMs: keep.day },
      });
      expect(statistics().retention).toMatchObject({ minute: { keepMs: 2 * DAY }, hour: { keepMs: 90 * DAY } });
    });

    it('drops minutes older than their retention; hours, days and totals keep counting', () => {
      const given = short.given([...t1Life.slice(0, -1), ...t2Life, t1Life.at(-1)!]);
      given.then('minute', [{ bucketStart: T0 + 10 * MINUTE, taskId: '*', fires: 1 }]);
      given.then('hour', [
        { bucketStart: T0, taskId: '*', fires: 2, succeeded: 1, misfired: 599 },
        { bucketStart: T0, taskId: 't1', fires: 1, succeeded: 1 },
        { bucketStart: T0, taskId: 't2', fires: 1, misfired: 599 },
      ]);
      given.then('totals', [{ fires: 2, succeeded: 1, misfired: 599 }]);
    });

    it('never writes a row retention would drop, so a late event cannot bring back a pruned minute', () => {
      const model = statistics({ keepMs: keep });
      const written: string[] = [];
      foldReadModel(
        {
          ...model,
          evolve: (rows, e, context) => {
            const writes = model.evolve(rows, e, context);
            for (const w of writes) {
              if (w.table === 'totals' || !('row' in w)) continue;
              written.push(`${w.table} ${w.row.taskId}`);
              expect(w.row.bucketStart).toBeGreaterThanOrEqual(context.watermark - keep[w.table]);
            }
            return writes;
          },
        },
        log,
      );
      // t1's success, recorded after t2's fire moved the watermark on, still counts in its hour.
      expect(written.slice(-4)).toEqual(['hour t1', 'hour *', 'day t1', 'day *']);
      // t1's fire, t2's misfire and fire counted in their minutes; t1's success, past the 5 minutes kept, did not.
      expect(written.filter((w) => w.startsWith('minute '))).toEqual(['minute *', 'minute *', 'minute *']);
    });

    it('agrees with itself folded in one go or in two commits, pruned in between', () => {
      const model = statistics({ keepMs: keep });
      const split = log.findIndex((e) => e.occurredAt >= T0 + 10 * MINUTE) + 1;
      const live = foldReadModel(model, log.slice(0, split));
      expect([...live.rows.minute.values()].some((r) => r.bucketStart === T0)).toBe(false);
      const resumed = foldReadModel(model, log.slice(split), live.rows, live.watermark);
      expect(resumed.rows).toEqual(foldReadModel(model, log).rows);
    });
  });
});
