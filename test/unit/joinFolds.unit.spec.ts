import { describe, expect, it } from 'vitest';
import { clusterHistory } from '../../domain/projections/clusterHistory.js';
import { auditIndex } from '../../domain/projections/auditIndex.js';
import { fireIndex } from '../../domain/projections/fireIndex.js';
import { applyEvents, emptyRows, foldReadModel, joinFolds } from '../../domain/projections/foldReadModel.js';
import { occurredAtOf } from '../../domain/projections/occurredAt.js';
import type { AnyReadModel, ProjectedEvent, ReadModel } from '../../domain/projections/readModel.js';
import { statistics } from '../../domain/projections/statistics.js';
import { taskBoard } from '../../domain/projections/taskBoard.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { partitionOf } from '../../src/store/streamPartition.js';
import { life, logOf } from './support/projectionFixtures.js';
import { T0, spec } from './support/taskFixtures.js';

const S = 1_000;
const MINUTE = 60 * S;
const HOUR = 60 * MINUTE;

/**
 * Eight tasks over ~three hours, their events in time order as a log holds them: fires every few
 * minutes, failures and retries, a pause and a resume, an update, a deletion, a node that takes over.
 */
const history = (): ProjectedEvent[] => {
  const lives: TaskEvent[][] = [];
  for (let n = 0; n < 8; n++) {
    const task = life(
      spec({
        id: `job-${n + 10}`,
        schedule: { every: '5m' },
        retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } },
      }),
      T0 + n * S,
    );
    for (let minute = 5; minute <= 180; minute += 5) {
      const at = T0 + minute * MINUTE + n * S;
      const lease = minute > 120 ? { node: 'n2', epoch: 8 } : { node: 'n1', epoch: 7 };
      task.advance(at + 3 + n, lease);
      // Paused (job-13) or deleted (job-16): nothing fired.
      const fired = !(n === 3 && minute > 60 && minute <= 90) && !(n === 6 && minute > 150);
      if (fired && (minute + n) % 7 === 0)
        task
          .fail(at + 40)
          .advance(at + 2 * S, lease)
          .succeed(at + 2 * S + 30);
      else if (fired) task.succeed(at + 20 + n);
      if (n === 3 && minute === 60) task.pause(at + 100, 'maintenance');
      if (n === 3 && minute === 90) task.resume(at + 100);
      if (n === 5 && minute === 100)
        task.update(
          spec({
            id: 'job-15',
            schedule: { every: '5m' },
            timeout: '30s',
            retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } },
          }),
          at + 200,
        );
      if (n === 6 && minute === 150) task.delete(at + 200, 'retired');
    }
    lives.push(task.events);
  }
  const events = lives.flat().sort((a, b) => occurredAtOf(a) - occurredAtOf(b));
  return logOf(events);
};

/** Folds the events of each part of two apart, as the rebuild's threads do, and joins them. */
const foldInHalves = <R extends object>(model: ReadModel<R & Record<string, object>>, events: ProjectedEvent[]) => {
  const half = (index: number) => {
    const rows = emptyRows(model);
    const watermark = applyEvents(
      model,
      events.filter((e) => partitionOf(e.stream, 2) === index),
      rows,
    );
    return { rows, watermark };
  };
  return joinFolds(model, half(0), half(1));
};

const models: Array<[string, AnyReadModel]> = [
  ['board', taskBoard()],
  ['fires', fireIndex()],
  ['fires, kept 1 h', fireIndex({ keepMs: HOUR })],
  ['audit', auditIndex()],
  ['cluster', clusterHistory()],
  ['stats', statistics()],
  [
    'stats, minutes kept 10 min, hours 2 h',
    statistics({ keepMs: { minute: 10 * MINUTE, hour: 2 * HOUR, day: 30 * 24 * HOUR } }),
  ],
];

describe('a fold split by stream and joined equals one fold of the whole log', () => {
  const events = history();

  it('the log has streams in both halves', () => {
    const parts = new Set(events.map((e) => partitionOf(e.stream, 2)));
    expect([...parts].sort()).toEqual([0, 1]);
  });

  it.each(models)('%s', (_, model) => {
    const whole = foldReadModel(model, events);
    const joined = foldInHalves(model, events);
    expect(joined.watermark).toBe(whole.watermark);
    for (const table of Object.keys(model.tables)) {
      expect(Object.fromEntries(joined.rows[table]!), table).toEqual(Object.fromEntries(whole.rows[table]!));
    }
    // Not vacuous: each table named here has rows.
    expect(Object.values(whole.rows).some((rows) => rows.size > 0)).toBe(true);
  });

  it('the statistics totals and `*` rows are the merge of both halves', () => {
    const joined = foldInHalves(statistics(), events);
    const whole = foldReadModel(statistics(), events);
    expect(joined.rows.totals.get('*')).toEqual(whole.rows.totals.get('*'));
    expect(whole.rows.totals.get('*')?.fires).toBeGreaterThan(8 * 30);
  });

  it('statistics of fractional durations (a log another writer made) merge to those of one fold', () => {
    // Float sums depend on their order; the statistics count whole milliseconds.
    const fractional = events.map((e, i) =>
      e.kind === 'task' && e.event.type === 'TaskSucceeded'
        ? {
            ...e,
            event: {
              ...e.event,
              data: { ...e.event.data, durationMs: e.event.data.durationMs + [0.2, 0.3, 0.7][i % 3]! },
            },
          }
        : e,
    );
    const whole = foldReadModel(statistics(), fractional);
    expect(foldInHalves(statistics(), fractional).rows.hour).toEqual(whole.rows.hour);
    expect(whole.rows.totals.get('*')?.succeeded).toBeGreaterThan(0);
  });

  it('a table whose rows gather several streams and that has no merge is refused, naming it', () => {
    type Count = { all: { scope: string; events: number } };
    const counter: ReadModel<Count> = {
      name: 'counter',
      version: 1,
      reads: 'tasks',
      tables: { all: { row: null as never, key: ['scope'] } },
      evolve: (rows) => [{ table: 'all', row: { scope: '*', events: (rows.get('all', ['*'])?.events ?? 0) + 1 } }],
    };
    expect(() => foldInHalves(counter, events)).toThrow(
      /read model 'counter': table 'all' has a row from streams of both halves \(key \["\*"\]\) and no merge/,
    );
    const merged: ReadModel<Count> = {
      ...counter,
      merge: { all: (a, b) => ({ scope: a.scope, events: a.events + b.events }) },
    };
    expect(foldInHalves(merged, events).rows.all.get('*')?.events).toBe(events.length);
  });
});
