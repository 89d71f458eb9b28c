import type { Logger } from 'pino';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { taskStreamOf, type TaskEvent } from '../../domain/task/events.js';
import { TaskSpec, type TaskSpecInput } from '../../domain/task/spec.js';
import { toIso } from '../../domain/time/instant.js';
import { LocalCoordinator } from '../../src/coordination/localCoordinator.js';
import { SchedulerNode } from '../../src/node/schedulerNode.js';
import type { EventStore, StreamAppend } from '../../src/store/eventStore.js';
import { type SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';
import type { FireDelivery, OutcomeListener, Target } from '../../src/targets/dispatcher.js';

export const benchDir = (): { path: string; remove(): void } => {
  const path = mkdtempSync(join(tmpdir(), 'kairos-bench-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
};

/**
 * Registers tasks `task-0`, `task-1`, ... by appending their `TaskCreated` events straight to the log,
 * in batches: the benchmarks measure firing and recovery, not the API. Returns their ids.
 */
export const seedTasks = async (
  store: EventStore,
  count: number,
  input: (i: number) => Omit<TaskSpecInput, 'id'>,
  at: number,
): Promise<string[]> => {
  const BATCH = 5_000;
  for (let start = 0; start < count; start += BATCH) {
    const appends: StreamAppend[] = [];
    for (let i = start; i < Math.min(count, start + BATCH); i++) {
      const spec = TaskSpec.parse({ id: `task-${i}`, ...input(i) });
      const event: TaskEvent = { type: 'TaskCreated', data: { v: 1, taskId: spec.id, spec, at: toIso(at) } };
      appends.push({
        stream: taskStreamOf(spec.id),
        events: [{ id: randomUUID(), type: event.type, data: event.data, metadata: { actor: 'user:bench' } }],
        expectedRevision: 'no_stream',
      });
    }
    const results = await store.appendBatch(appends);
    const failed = results.find((r) => !r.ok);
    if (failed && !failed.ok) throw failed.error;
  }
  return Array.from({ length: count }, (_, i) => `task-${i}`);
};

/** A business service that answers every fire at once (succeeded), or never when `answer` is false. */
export class InstantTarget implements Target {
  listener: OutcomeListener = () => {};
  constructor(private readonly answer: boolean) {}
  deliver(fire: FireDelivery): void {
    if (this.answer)
      setImmediate(() =>
        this.listener({
          taskId: fire.taskId,
          fireId: fire.fireId,
          attempt: fire.attempt,
          status: 'succeeded',
          at: Date.now(),
          details: [],
        }),
      );
  }
  cancel(): void {}
  async close(): Promise<void> {}
}

export const openNode = (options: {
  dataDir: string;
  store: SqliteEventStore;
  answer: boolean;
  snapshot?: boolean;
  logger?: Logger;
}) => {
  const target = new InstantTarget(options.answer);
  const node = new SchedulerNode({
    nodeId: 'bench',
    ...(options.logger ? { logger: options.logger } : {}),
    store: options.store,
    target,
    // As `kairos start` keeps it; saved on stop.
    ...(options.snapshot ? { snapshot: { file: join(options.dataDir, 'node-state.snapshot'), everyMs: 300_000 } } : {}),
    coordinator: ({ maxEpoch }) =>
      new LocalCoordinator({ nodeId: 'bench', dataDir: options.dataDir, minEpoch: () => maxEpoch }),
  });
  target.listener = (o) => void node.reportOutcome(o);
  return node;
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const ascending = (a: number, b: number) => a - b;
export const round1 = (n: number): number => Math.round(n * 10) / 10;

export const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

export const mib = (bytes: number): string => `${(bytes / 1_048_576).toFixed(0)} MiB`;

export const settleMemory = async (): Promise<NodeJS.MemoryUsage> => {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 100));
  }
  return process.memoryUsage();
};

/**
 * What a subscriber's samples (`[scheduledAt, handledAt, ...]`) say about the window `[from, to)`:
 * the sorted lateness of the ticks scheduled in it, and how many fires were handled in it.
 */
export const windowOf = (
  samples: readonly number[],
  from: number,
  to: number,
): { lateness: number[]; handled: number } => {
  const lateness: number[] = [];
  let handled = 0;
  for (let i = 0; i < samples.length; i += 2) {
    const scheduled = samples[i] as number;
    const at = samples[i + 1] as number;
    if (scheduled >= from && scheduled < to) lateness.push(at - scheduled);
    if (at >= from && at < to) handled++;
  }
  lateness.sort(ascending);
  return { lateness, handled };
};
