import { describe, expect, it } from 'vitest';
import { boardAt, recallFromHistory } from '../../domain/projections/pointInTime.js';
import { emptyTaskHistory, foldTaskHistory } from '../../domain/task/capture.js';
import { decide } from '../../domain/task/decide.js';
import { foldTask } from '../../domain/task/state.js';
import { by, life, logOf } from './support/projectionFixtures.js';
import { T0, spec } from './support/taskFixtures.js';

const S = 1_000;

/** A task's life with three definitions, and the same stream as retention leaves it: a capture at revision n. */
const changedThrice = () => {
  const task = life(spec({ schedule: { every: '1s' } }), T0)
    .update(spec({ schedule: { every: '2s' } }), T0 + 10 * S)
    .pause(T0 + 20 * S, 'freeze')
    .update(spec({ schedule: { every: '3s' } }), T0 + 30 * S);
  const log = logOf(task.events.map((e, i) => (e.type === 'TaskPaused' && i > 0 ? by('user:bob', e) : e)));
  const history = log.reduce(
    (h, e) => (e.kind === 'task' ? foldTaskHistory(h, e.event, e.revision, e.metadata!) : h),
    emptyTaskHistory(),
  );
  const [capture] = decide({ type: 'CaptureState', now: T0 + 40 * S, history }, foldTask('t1', task.events));
  const truncated = { ...logOf([capture!])[0]!, revision: log.length, position: log.length + 1 };
  return { log, truncated: [truncated] };
};

describe('point in time', () => {
  it('folds each task up to the first event after the time asked', () => {
    const { log } = changedThrice();
    const schedule = (at: number) => boardAt(log, at).rows.get('t1')?.state.spec?.schedule;
    expect(schedule(T0 + 5 * S)).toEqual({ every: 1_000 });
    expect(schedule(T0 + 15 * S)).toEqual({ every: 2_000 });
    expect(schedule(T0 + 35 * S)).toEqual({ every: 3_000 });
    expect(boardAt(log, T0 + 25 * S).rows.get('t1')).toMatchObject({
      status: 'paused',
      paused: { actor: 'user:bob', reason: 'freeze' },
    });
    expect(boardAt(log, T0 - 1).rows.size).toBe(0);
  });

  it('after retention, a task truncated past the time asked is recalled from its capture, and says so', () => {
    const { truncated } = changedThrice();
    const { rows, recalled } = boardAt(truncated, T0 + 25 * S);
    expect([...recalled]).toEqual(['t1']);
    expect(rows.get('t1')).toMatchObject({
      status: 'paused',
      paused: { actor: 'user:bob', at: T0 + 20 * S, reason: 'freeze' },
      createdAt: T0,
      nextFireAt: null,
      lastFireAt: null,
    });
    expect(rows.get('t1')?.state.spec?.schedule).toEqual({ every: 2_000 });
    expect(boardAt(truncated, T0 - 1).rows.size).toBe(0);
    // From the capture on, the stream itself is folded, exactly.
    expect(boardAt(truncated, T0 + 45 * S).recalled.size).toBe(0);
  });

  it('recalls status through pauses, deletes and restores', () => {
    const task = life(spec(), T0)
      .pause(T0 + S)
      .delete(T0 + 2 * S)
      .restore(T0 + 3 * S)
      .resume(T0 + 4 * S);
    const history = logOf(task.events).reduce(
      (h, e) => (e.kind === 'task' ? foldTaskHistory(h, e.event, e.revision, e.metadata!) : h),
      emptyTaskHistory(),
    );
    const statusAt = (at: number) => recallFromHistory(history, at).status;
    expect([T0 - 1, T0, T0 + S, T0 + 2 * S, T0 + 3 * S, T0 + 4 * S].map(statusAt)).toEqual([
      'absent',
      'active',
      'paused',
      'deleted',
      'paused',
      'active',
    ]);
  });
});
