import { describe, expect, it } from 'vitest';
import { emptyTaskHistory, foldTaskHistory } from '../../domain/task/capture.js';
import { decide } from '../../domain/task/decide.js';
import { foldTask } from '../../domain/task/state.js';
import { foldReadModel } from '../../domain/projections/foldReadModel.js';
import { taskBoard } from '../../domain/projections/taskBoard.js';
import { ProjectionSpec, by, life, logOf } from './support/projectionFixtures.js';
import { T0, spec } from './support/taskFixtures.js';

const S = 1_000;
const board = ProjectionSpec.for(taskBoard());

describe('task board', () => {
  it('a new task: active, idle, its next fire, where fires go, who created it', () => {
    const [created] = life(spec({ name: 'Nightly export' }), T0).events;
    board.given([by('user:ana', created!)]).then('tasks', [
      {
        taskId: 't1',
        name: 'Nightly export',
        status: 'active',
        lifecycle: 'idle',
        topic: 'jobs',
        webhook: null,
        owner: null,
        nextFireAt: T0 + S,
        createdAt: T0,
        changedAt: T0,
        changedBy: 'user:ana',
        revision: 0,
        position: 1,
      },
    ]);
  });

  it('follows fires: running while in flight, owner, last fire and outcome, failure streak', () => {
    const task = life(spec({ overlap: 'allow' }), T0).advance(T0 + S + 5);
    board
      .given(task.events)
      .then('tasks', [
        { lifecycle: 'running', owner: 'n1', inFlight: 1, lastFireAt: T0 + S + 5, runs: 1, nextFireAt: T0 + 2 * S },
      ]);
    task
      .fail(T0 + S + 50, 'db down')
      .advance(T0 + 2 * S)
      .fail(T0 + 2 * S + 20, 'still down');
    board
      .given(task.events)
      .then('tasks', [
        { lifecycle: 'idle', lastOutcome: 'failed', lastError: 'still down', failureStreak: 2, inFlight: 0 },
      ]);
    task.advance(T0 + 3 * S).succeed(T0 + 3 * S + 10);
    board.given(task.events).then('tasks', [{ lastOutcome: 'succeeded', lastError: null, failureStreak: 0 }]);
  });

  it('paused: by whom, when and why — gone again once resumed; no next fire while paused', () => {
    const task = life(spec(), T0);
    const [created] = task.events;
    const paused = task.pause(T0 + 10, 'maintenance').events.at(-1)!;
    board.given([created!, by('user:bob', paused)]).then('tasks', [
      {
        status: 'paused',
        lifecycle: 'paused',
        nextFireAt: null,
        paused: { actor: 'user:bob', at: T0 + 10, reason: 'maintenance' },
        changedBy: 'user:bob',
      },
    ]);
    const resumed = task.resume(T0 + 20).events.at(-1)!;
    board
      .given([created!, by('user:bob', paused), by('user:eve', resumed)])
      .then('tasks', [{ status: 'active', paused: null, changedBy: 'user:eve', changedAt: T0 + 20 }]);
  });

  it('deleted: by whom and why; restored: cleared', () => {
    const task = life(spec(), T0);
    const [created] = task.events;
    const deleted = task.delete(T0 + 10, 'obsolete').events.at(-1)!;
    board
      .given([created!, by('user:bob', deleted)])
      .then('tasks', [
        { status: 'deleted', deleted: { actor: 'user:bob', at: T0 + 10, reason: 'obsolete' }, nextFireAt: null },
      ]);
    const restored = task.restore(T0 + 20).events.at(-1)!;
    board.given([created!, by('user:bob', deleted), restored]).then('tasks', [{ status: 'active', deleted: null }]);
  });

  it('a webhook task shows its URL; an update shows the new name and schedule', () => {
    const task = life(spec({ target: { http: { url: 'https://hooks.example/run' } } }), T0);
    task.update(spec({ name: 'Renamed', schedule: { every: '10s' }, target: { topic: 'moved' } }), T0 + 100);
    board
      .given(task.events)
      .then('tasks', [
        { name: 'Renamed', topic: 'moved', webhook: null, nextFireAt: T0 + 100 + 10 * S, changedAt: T0 + 100 },
      ]);
  });

  it('after retention, a capture restores who paused the task though the pause itself was truncated', () => {
    const task = life(spec(), T0).pause(T0 + 10, 'holiday freeze');
    const log = logOf([task.events[0]!, by('user:bob', task.events[1]!)]);
    const history = log.reduce(
      (h, e) => (e.kind === 'task' ? foldTaskHistory(h, e.event, e.revision, e.metadata!) : h),
      emptyTaskHistory(),
    );
    const [capture] = decide({ type: 'CaptureState', now: T0 + 50, history }, foldTask('t1', task.events));
    // The stream as retention left it: the capture alone, at revision 2.
    const truncated = [{ ...logOf([capture!])[0]!, revision: 2, position: 3 }];
    const rows = foldReadModel(taskBoard(), truncated).rows.tasks;
    expect([...rows.values()]).toMatchObject([
      {
        status: 'paused',
        paused: { actor: 'user:bob', at: T0 + 10, reason: 'holiday freeze' },
        createdAt: T0,
        changedBy: 'user:bob',
        revision: 2,
      },
    ]);
  });
});
