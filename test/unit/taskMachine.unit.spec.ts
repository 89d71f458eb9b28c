import { describe, expect, it } from 'vitest';
import { createActor, initialTransition, transition } from 'xstate';
import { decide } from '../../domain/task/decide.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { fireIdOf } from '../../domain/task/fireId.js';
import { lifecycleOf, snapshotOf, taskMachine } from '../../domain/task/machine.js';
import { evolve, foldTask, initialTaskState } from '../../domain/task/state.js';
import { TaskRecord } from '../../src/node/taskRecord.js';
import { LEASE, T0, advance, created, iso, spec } from './support/taskFixtures.js';

const S = 1_000;

/** A realistic life: created, fired and answered, paused, resumed, fired, failed and retried, deleted, restored. */
const life = (): TaskEvent[] => {
  const s = spec({ retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } } });
  const events: TaskEvent[] = [created(s)];
  const step = (command: Parameters<typeof decide>[0]) => events.push(...decide(command, foldTask('t1', events)));
  step(advance(T0 + S));
  step({
    type: 'RecordOutcome',
    outcome: { fireId: fireIdOf('t1', T0 + S), attempt: 1, status: 'succeeded', at: T0 + S + 50 },
  });
  step({ type: 'PauseTask', now: T0 + 1_500 });
  step({ type: 'ResumeTask', now: T0 + 2_500 });
  step(advance(T0 + 3 * S));
  step({
    type: 'RecordOutcome',
    outcome: { fireId: fireIdOf('t1', T0 + 3 * S), attempt: 1, status: 'failed', message: 'boom', at: T0 + 3 * S + 10 },
  });
  step(advance(T0 + 4 * S + 10));
  step({ type: 'DeleteTask', now: T0 + 4 * S + 20 });
  step({ type: 'RestoreTask', now: T0 + 5 * S });
  return events;
};

describe('the task statechart', () => {
  it('replayed with the pure transition function, it rebuilds the fold and runs no effect', () => {
    const events = life();
    let [snapshot, actions] = initialTransition(taskMachine, { taskId: 't1' });
    expect(actions.filter((a) => a.type !== 'apply')).toEqual([]);
    let state = initialTaskState('t1');
    const values: unknown[] = [];
    for (const event of events) {
      [snapshot, actions] = transition(taskMachine, snapshot, event);
      state = evolve(state, event);
      // The only action is `evolve` (an assign): replaying a stream can never deliver, append or time anything.
      expect(actions.filter((a) => a.type !== 'apply')).toEqual([]);
      expect(snapshot.context).toEqual(state);
      expect(snapshot.value).toEqual(lifecycleOf(state));
      values.push(snapshot.value);
    }
    expect(values).toContainEqual({ active: 'running' });
    expect(values).toContainEqual('paused');
    expect(values).toContainEqual('deleted');
    expect(values.at(-1)).toEqual({ active: 'running' }); // restored with the retry of the 3 s fire pending
  });

  it('snapshotOf a folded state equals the snapshot reached by replay, so a folded state maps onto the statechart exactly', () => {
    const events = life();
    for (let n = 1; n <= events.length; n++) {
      let snapshot = initialTransition(taskMachine, { taskId: 't1' })[0];
      for (const e of events.slice(0, n)) snapshot = transition(taskMachine, snapshot, e)[0];
      const woken = snapshotOf(foldTask('t1', events.slice(0, n)));
      expect(woken.value).toEqual(snapshot.value);
      expect(woken.context).toEqual(snapshot.context);
    }
  });

  it('an actor restored from a snapshot goes on exactly as the fold does', () => {
    const events = life();
    const half = Math.floor(events.length / 2);
    const actor = createActor(taskMachine, {
      snapshot: snapshotOf(foldTask('t1', events.slice(0, half))),
      input: { taskId: 't1' },
    }).start();
    for (const e of events.slice(half)) actor.send(e);
    expect(actor.getSnapshot().context).toEqual(foldTask('t1', events));
    actor.stop();
  });

  it('restore returns a task deleted while paused to paused', () => {
    const events: TaskEvent[] = [
      created(),
      { type: 'TaskPaused', data: { v: 1, taskId: 't1', at: iso(T0 + S) } },
      { type: 'TaskDeleted', data: { v: 1, taskId: 't1', at: iso(T0 + 2 * S) } },
      { type: 'TaskRestored', data: { v: 1, taskId: 't1', at: iso(T0 + 3 * S) } },
    ];
    let snapshot = initialTransition(taskMachine, { taskId: 't1' })[0];
    for (const e of events) snapshot = transition(taskMachine, snapshot, e)[0];
    expect(snapshot.value).toBe('paused');
  });
});

describe('TaskRecord', () => {
  it('folds to the state and lifecycle the statechart reaches, event by event', () => {
    const events = life();
    const record = new TaskRecord('t1');
    const actor = createActor(taskMachine, { input: { taskId: 't1' } }).start();
    events.forEach((e, i) => {
      record.apply(e, BigInt(i));
      actor.send(e);
      expect(record.state).toEqual(actor.getSnapshot().context);
      expect(lifecycleOf(record.state)).toEqual(actor.getSnapshot().value);
    });
    expect(record.revision).toBe(BigInt(events.length - 1));
    actor.stop();
  });

  it('decides like the fold: its first fire claims ownership', () => {
    const record = new TaskRecord('t1');
    record.apply(created(), 0n);
    expect(decide(advance(T0 + S, LEASE), record.state)[0]).toMatchObject({ type: 'TaskAssigned' });
  });
});
