import { expect } from 'vitest';
import { decide, decideFolded, type Lease, type TaskCommand } from '../../../domain/task/decide.js';
import type { TaskEvent } from '../../../domain/task/events.js';
import { TaskSpec, type TaskSpecInput } from '../../../domain/task/spec.js';
import { evolve, foldTask } from '../../../domain/task/state.js';
import { toIso } from '../../../domain/time/instant.js';

export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
export const LEASE: Lease = { node: 'n1', epoch: 7 };

export const spec = (over: Partial<TaskSpecInput> = {}): TaskSpec =>
  TaskSpec.parse({ id: 't1', schedule: { every: '1s' }, target: { topic: 'jobs' }, ...over });

export const created = (s: TaskSpec = spec(), at = T0): TaskEvent => ({
  type: 'TaskCreated',
  data: { v: 1, taskId: s.id, spec: s, at: toIso(at) },
});

/** Given/When/Then for the task decider, in emmett's style: events in, command, events out (or an error). */
export const given = (events: TaskEvent[], taskId = 't1') => {
  const state = foldTask(taskId, events);
  return {
    state,
    when: (command: TaskCommand) => {
      // Every spec also holds `decideFolded` to `decide`: the same events, and the state they fold to.
      const run = () => {
        const events = decide(command, state);
        const folded = decideFolded(command, state);
        expect(folded.events).toEqual(events);
        expect(folded.state).toEqual(events.reduce(evolve, state));
        return events;
      };
      return {
        then: (expected: unknown[]) => {
          const events = run();
          expect(events).toMatchObject(expected);
          expect(events).toHaveLength(expected.length);
          return events;
        },
        thenThrows: (errorClass: new (...args: never[]) => Error, message?: RegExp) => {
          expect(run).toThrow(errorClass);
          if (message) expect(run).toThrow(message);
          expect(() => decideFolded(command, state)).toThrow(errorClass);
          if (message) expect(() => decideFolded(command, state)).toThrow(message);
        },
        thenNothingHappened: () => expect(run()).toEqual([]),
        events: run,
      };
    },
  };
};

export const advance = (now: number, lease: Lease = LEASE): TaskCommand => ({ type: 'Advance', now, lease });

/** Events of firing tick `at` on behalf of `lease`: what `decide` produced, for building histories. */
export const fireAt = (events: TaskEvent[], now: number, lease: Lease = LEASE): TaskEvent[] => [
  ...events,
  ...decide(advance(now, lease), foldTask((events[0] as { data: { taskId: string } }).data.taskId, events)),
];

export const iso = toIso;
