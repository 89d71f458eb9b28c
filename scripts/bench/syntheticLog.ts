import { randomUUID } from 'node:crypto';
import { taskStreamOf, type EventMetadata, type TaskEventData } from '../../domain/task/events.js';
import { fireIdOf } from '../../domain/task/fireId.js';
import { TaskSpec } from '../../domain/task/spec.js';
import { toIso } from '../../domain/time/instant.js';
import type { EventData, EventStore, StreamAppend } from '../../src/store/eventStore.js';

export type SyntheticLogOptions = {
  tasks: number;
  /** Fires of each task, spread evenly over the window (every task has the same period). */
  firesPerTask: number;
  /** The window ends here (epoch ms); its fires are in `[end - windowMs, end)`. */
  end: number;
  /** @default 48 h */
  windowMs?: number;
  /** Share of fires that end in `TaskFailed` (reason `error`) instead of `TaskSucceeded`. @default 0.05 */
  failureRate?: number;
  /** The node that owns every task and fired everything (`TaskAssigned` epoch 1). @default 'bench-node' */
  nodeId?: string;
  /** Events per `appendBatch`. @default 40_000 */
  batchEvents?: number;
  /** @default 1 */
  seed?: number;
};

export type SyntheticLog = {
  events: number;
  fires: number;
  failed: number;
  taskIds: string[];
  /** The log's head position once written. */
  head: number;
  ms: number;
};

/** Events a log of `tasks` tasks with `firesPerTask` fires each holds: created, assigned, then fired + outcome per fire. */
export const syntheticLogSize = (tasks: number, firesPerTask: number): number => tasks * (2 + 2 * firesPerTask);

/** mulberry32: a tiny seeded PRNG, so that two runs write the same failures. */
const prng = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
};

/** Batches submitted and not yet written: the store takes one at a time, the others queue while the next is built. */
const MAX_IN_FLIGHT = 2;

const TOPICS = ['billing.invoice', 'reports.daily', 'crm.sync', 'mail.digest', 'search.reindex'];
const FAILURES = [
  'HTTP 503 from ledger-api',
  'connection reset by peer',
  'deadlock detected; transaction rolled back',
  'upstream quota exceeded (429)',
];

type TaskInfo = {
  taskId: string;
  stream: string;
  firstTick: number;
  group: string;
  consumer: string;
  successDetails: TaskEventData<'TaskSucceeded'>['details'];
};

/**
 * A realistic history appended through `store.appendBatch` as a node would have written it, in the
 * order it would have happened: `tasks` tasks created and assigned to one node, then every task
 * firing `firesPerTask` times, evenly over the window, with ticks spread over the period (task i is
 * offset by i/tasks of it), each fire answered by its consumer group — succeeded, or (`failureRate`)
 * failed — a few ms to a few hundred ms later. Event ids are the node's: a `TaskFired` carries its
 * fire id (`fireIdOf`), every other event a random UUID.
 *
 * Built for speed (millions of events): each task's spec goes through `TaskSpec` once, each event's
 * data is a plain literal of the domain type, a fire and its outcome form one append (they are
 * adjacent in a real log too at this rate), and the next batch is built while one is being written.
 */
export const writeSyntheticLog = async (store: EventStore, options: SyntheticLogOptions): Promise<SyntheticLog> => {
  const started = Date.now();
  const windowMs = options.windowMs ?? 48 * 3_600_000;
  const failureRate = options.failureRate ?? 0.05;
  const nodeId = options.nodeId ?? 'bench-node';
  const batchAppends = Math.max(1, Math.floor((options.batchEvents ?? 40_000) / 2));
  const random = prng(options.seed ?? 1);
  const periodMs = Math.floor(windowMs / options.firesPerTask);
  const start = options.end - periodMs * options.firesPerTask;
  const createdAt = toIso(start - 3_600_000);
  const byNode: EventMetadata = { actor: `node:${nodeId}` };
  const byUser: EventMetadata = { actor: 'user:ops@example.com', node: nodeId };

  const tasks: TaskInfo[] = [];
  for (let i = 0; i < options.tasks; i++) {
    const taskId = `job-${String(i).padStart(5, '0')}`;
    const group = (TOPICS[i % TOPICS.length] as string).split('.')[0] as string;
    const consumer = `${group}-worker-${i % 4}`;
    tasks.push({
      taskId,
      stream: taskStreamOf(taskId),
      firstTick: start + Math.floor((i * periodMs) / options.tasks),
      group,
      consumer,
      successDetails: [{ group, consumer, status: 'succeeded' }],
    });
  }

  let events = 0;
  let fires = 0;
  let failed = 0;
  const inFlight: Array<Promise<void>> = [];
  const flush = async (appends: StreamAppend[]): Promise<void> => {
    const written = store.appendBatch(appends).then((results) => {
      for (const r of results) if (!r.ok) throw r.error;
    });
    // Awaited below, maybe after it failed: not an unhandled rejection meanwhile.
    written.catch(() => undefined);
    inFlight.push(written);
    // Two batches in flight: one being written while the next is built.
    if (inFlight.length >= MAX_IN_FLIGHT) await inFlight.shift();
  };

  let batch: StreamAppend[] = [];
  const add = async (append: StreamAppend): Promise<void> => {
    batch.push(append);
    events += append.events.length;
    if (batch.length >= batchAppends) {
      await flush(batch);
      batch = [];
    }
  };
  for (let i = 0; i < tasks.length; i++) {
    const t = tasks[i] as TaskInfo;
    const spec = TaskSpec.parse({
      id: t.taskId,
      name: `${TOPICS[i % TOPICS.length]} for tenant ${i % 97}`,
      schedule: { every: periodMs, startAt: toIso(t.firstTick) },
      target: { topic: TOPICS[i % TOPICS.length] },
      labels: { team: t.group, tier: i % 10 === 0 ? 'gold' : 'standard' },
      payload: { tenant: `tenant-${i % 97}` },
    });
    const created: EventData = {
      id: randomUUID(),
      type: 'TaskCreated',
      data: { v: 1, taskId: t.taskId, spec, at: createdAt } satisfies TaskEventData<'TaskCreated'>,
      metadata: byUser,
    };
    const assigned: EventData = {
      id: randomUUID(),
      type: 'TaskAssigned',
      data: {
        v: 1,
        taskId: t.taskId,
        node: nodeId,
        epoch: 1,
        reason: 'start',
        at: createdAt,
      } satisfies TaskEventData<'TaskAssigned'>,
      metadata: byNode,
    };
    await add({ stream: t.stream, events: [created, assigned], expectedRevision: 'no_stream' });
  }

  for (let k = 0; k < options.firesPerTask; k++) {
    // The revision of the task's last event before this fire: created (0), assigned (1), then two per fire.
    const expectedRevision = BigInt(1 + 2 * k);
    for (const t of tasks) {
      const scheduled = t.firstTick + k * periodMs;
      const fired = scheduled + Math.floor(random() * 4);
      const durationMs = 15 + Math.floor(random() * 300);
      const fireId = fireIdOf(t.taskId, scheduled);
      const fire: EventData = {
        id: fireId,
        type: 'TaskFired',
        data: {
          v: 1,
          taskId: t.taskId,
          fireId,
          scheduledAt: toIso(scheduled),
          firedAt: toIso(fired),
          node: nodeId,
          epoch: 1,
          attempt: 1,
          trigger: 'schedule',
          deadline: toIso(fired + 60_000),
        } satisfies TaskEventData<'TaskFired'>,
        metadata: byNode,
      };
      const outcomeMetadata: EventMetadata = { actor: byNode.actor, correlationId: fireId };
      let outcome: EventData;
      if (random() < failureRate) {
        failed++;
        const message = FAILURES[Math.floor(random() * FAILURES.length)] as string;
        outcome = {
          id: randomUUID(),
          type: 'TaskFailed',
          data: {
            v: 1,
            taskId: t.taskId,
            fireId,
            attempt: 1,
            at: toIso(fired + durationMs),
            reason: 'error',
            message,
            durationMs,
            details: [{ group: t.group, consumer: t.consumer, status: 'failed', message }],
          } satisfies TaskEventData<'TaskFailed'>,
          metadata: outcomeMetadata,
        };
      } else {
        outcome = {
          id: randomUUID(),
          type: 'TaskSucceeded',
          data: {
            v: 1,
            taskId: t.taskId,
            fireId,
            attempt: 1,
            at: toIso(fired + durationMs),
            durationMs,
            details: t.successDetails,
          } satisfies TaskEventData<'TaskSucceeded'>,
          metadata: outcomeMetadata,
        };
      }
      fires++;
      await add({ stream: t.stream, events: [fire, outcome], expectedRevision });
    }
  }
  if (batch.length > 0) await flush(batch);
  await Promise.all(inFlight);
  return {
    events,
    fires,
    failed,
    taskIds: tasks.map((t) => t.taskId),
    head: Number(await store.headPosition()),
    ms: Date.now() - started,
  };
};
