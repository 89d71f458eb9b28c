import { expect } from 'vitest';
import type { ClusterEvent } from '../../../domain/cluster/events.js';
import { foldReadModel } from '../../../domain/projections/foldReadModel.js';
import type { ProjectedEvent, ReadModel, Tables } from '../../../domain/projections/readModel.js';
import { CLUSTER_STREAM, taskStreamOf, type EventMetadata, type TaskEvent } from '../../../domain/task/events.js';
import { decide, type Lease, type TaskCommand } from '../../../domain/task/decide.js';
import type { TaskSpec } from '../../../domain/task/spec.js';
import { foldTask, initialTaskState } from '../../../domain/task/state.js';
import { occurredAtOf } from '../../../domain/projections/occurredAt.js';

/**
 * Turns domain events into the log a read model sees: positions from 1 in the order given, revisions
 * counted per stream, recorded at the time each event names. `metadata` (default: the task's node)
 * may be given per event with `withMetadata`.
 */
export const logOf = (events: ReadonlyArray<TaskEvent | ClusterEvent | Annotated>): ProjectedEvent[] => {
  const revisions = new Map<string, number>();
  return events.map((item, i) => {
    const { event, metadata } = 'event' in item ? item : { event: item, metadata: undefined };
    const taskId = (event.data as { taskId?: string }).taskId;
    const stream = taskId === undefined ? CLUSTER_STREAM : taskStreamOf(taskId);
    const revision = revisions.get(stream) ?? 0;
    revisions.set(stream, revision + 1);
    const base = {
      position: i + 1,
      stream,
      revision,
      recordedAt: occurredAtOf(event),
      occurredAt: occurredAtOf(event),
      metadata: metadata ?? { actor: 'node:n1' },
    };
    return taskId === undefined
      ? { ...base, kind: 'cluster' as const, event: event as ClusterEvent }
      : { ...base, kind: 'task' as const, taskId, event: event as TaskEvent };
  });
};

type Annotated = { event: TaskEvent | ClusterEvent; metadata: EventMetadata };

/** An event with the metadata an operator's change carries. */
export const by = (actor: string, event: TaskEvent, extra: Partial<EventMetadata> = {}): Annotated => ({
  event,
  metadata: { actor, ...extra },
});

/** Given/When/Then for read models, as for deciders: events in, rows out (emmett's projection specs). */
export const ProjectionSpec = {
  for: <R extends Tables>(model: ReadModel<R>) => ({
    given: (events: ReadonlyArray<TaskEvent | ClusterEvent | Annotated>) => {
      const given = logOf(events);
      const fold = (more: ReadonlyArray<TaskEvent | ClusterEvent | Annotated>) =>
        foldReadModel(model, [...given, ...logOf([...events, ...more]).slice(given.length)]).rows;
      const when = (more: ReadonlyArray<TaskEvent | ClusterEvent | Annotated> = []) => ({
        /**
         * Every row of `table`, ordered by its key columns (numbers as numbers), must match these
         * (toMatchObject), and no other row may exist.
         */
        then: <T extends keyof R & string>(table: T, expected: ReadonlyArray<Partial<R[T]>>) => {
          const key = model.tables[table].key;
          const rows = [...fold(more)[table].values()].sort((a, b) => {
            for (const column of key) {
              const [x, y] = [a[column], b[column]] as Array<string | number>;
              if (x !== y) return x! < y! ? -1 : 1;
            }
            return 0;
          });
          expect(rows).toMatchObject(expected);
          expect(rows).toHaveLength(expected.length);
          return rows;
        },
        rows: () => fold(more),
      });
      return { when, then: when().then, rows: when().rows };
    },
  }),
};

/**
 * A task's life written through the real decider, so read-model specs fold the events Kairos really
 * records: `life(spec).fire(now).succeed(now)...events`. Each step decides on the state folded so far.
 */
export const life = (spec: TaskSpec, at: number, lease: Lease = { node: 'n1', epoch: 7 }) => {
  let events: TaskEvent[] = decide({ type: 'CreateTask', spec, now: at }, initialTaskState(spec.id));
  const step = (command: TaskCommand) => {
    events = [...events, ...decide(command, foldTask(spec.id, events))];
    return api;
  };
  const inFlight = () => foldTask(spec.id, events).inFlight;
  const outcome = (status: 'succeeded' | 'failed', now: number, message?: string) => {
    const fire = inFlight().find((f) => f.deadline !== null);
    if (!fire) throw new Error('no attempt in flight');
    return step({
      type: 'RecordOutcome',
      outcome: { fireId: fire.fireId, attempt: fire.attempt, status, at: now, ...(message ? { message } : {}) },
    });
  };
  const api = {
    /** Time has come to `now`: due ticks, timeouts and retries, as the node decides them. */
    advance: (now: number, as: Lease = lease, overloaded = false) =>
      step({ type: 'Advance', now, lease: as, ...(overloaded ? { overloaded } : {}) }),
    trigger: (now: number, reason?: string) => step({ type: 'TriggerTask', now, lease, reason }),
    succeed: (now: number) => outcome('succeeded', now),
    fail: (now: number, message = 'boom') => outcome('failed', now, message),
    pause: (now: number, reason?: string) => step({ type: 'PauseTask', now, reason }),
    resume: (now: number, reason?: string) => step({ type: 'ResumeTask', now, reason }),
    update: (next: TaskSpec, now: number, reason?: string) => step({ type: 'UpdateTask', spec: next, now, reason }),
    delete: (now: number, reason?: string) => step({ type: 'DeleteTask', now, reason }),
    restore: (now: number, reason?: string) => step({ type: 'RestoreTask', now, reason }),
    get events(): TaskEvent[] {
      return events;
    },
  };
  return api;
};
