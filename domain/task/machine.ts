import { assign, not, setup, type SnapshotFrom, type StateValue } from 'xstate';
import type { TaskEvent } from './events.js';
import { evolve, initialTaskState, isRunning, type TaskState, type TaskStatus } from './state.js';

/** A capture replaces the whole state, so from any state it leads to the one it records. */
const captured = [
  { guard: { type: 'captures', params: 'active' }, target: '#task.active', actions: 'apply' },
  { guard: { type: 'captures', params: 'paused' }, target: '#task.paused', actions: 'apply' },
  { guard: { type: 'captures', params: 'deleted' }, target: '#task.deleted', actions: 'apply' },
  { target: '#task.absent', actions: 'apply' },
] as const;

/**
 * The statechart of a task's lifecycle. Its events are the task's recorded events and its only action
 * is `evolve`, so feeding a stream through it (live, or replayed with xstate's pure `transition`) can
 * never cause a side effect: decisions live in `decide`, effects in the node runtime. Schedule delays
 * are not XState `after` timers: the node's timer queue drives time (design §5).
 */
export const taskMachine = setup({
  types: {
    context: {} as TaskState,
    events: {} as TaskEvent,
    input: {} as { taskId: string },
  },
  actions: {
    apply: assign(({ context, event }) => evolve(context, event)),
  },
  guards: {
    running: ({ context }) => isRunning(context),
    restoresPaused: ({ context }) => context.statusBeforeDelete === 'paused',
    captures: ({ event }, status: TaskStatus) =>
      event.type === 'TaskStateCaptured' && event.data.state.status === status,
  },
}).createMachine({
  id: 'task',
  context: ({ input }) => initialTaskState(input.taskId),
  initial: 'absent',
  states: {
    absent: {
      on: {
        TaskCreated: { target: 'active', actions: 'apply' },
        TaskStateCaptured: captured,
        '*': { actions: 'apply' },
      },
    },
    active: {
      initial: 'idle',
      states: {
        idle: { always: { guard: 'running', target: 'running' } },
        running: { always: { guard: not('running'), target: 'idle' } },
      },
      on: {
        TaskPaused: { target: 'paused', actions: 'apply' },
        TaskDeleted: { target: 'deleted', actions: 'apply' },
        TaskStateCaptured: captured,
        '*': { actions: 'apply' },
      },
    },
    paused: {
      on: {
        TaskResumed: { target: 'active', actions: 'apply' },
        TaskDeleted: { target: 'deleted', actions: 'apply' },
        TaskStateCaptured: captured,
        '*': { actions: 'apply' },
      },
    },
    deleted: {
      on: {
        TaskRestored: [
          { guard: 'restoresPaused', target: 'paused', actions: 'apply' },
          { target: 'active', actions: 'apply' },
        ],
        TaskStateCaptured: captured,
        '*': { actions: 'apply' },
      },
    },
  },
});

export type TaskSnapshot = SnapshotFrom<typeof taskMachine>;

/** The state value a context implies: where a folded state stands in the statechart. */
export const lifecycleOf = (state: TaskState): StateValue => {
  switch (state.status) {
    case 'active':
      return { active: isRunning(state) ? 'running' : 'idle' };
    default:
      return state.status;
  }
};

/** A snapshot of the machine for a folded state, without replaying the stream through the machine. */
export const snapshotOf = (state: TaskState): TaskSnapshot =>
  taskMachine.resolveState({ value: lifecycleOf(state), context: state });
