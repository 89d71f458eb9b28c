import { describe, expect, it } from 'vitest';
import { decide, type TaskCommand } from '../../domain/task/decide.js';
import { taskStreamOf } from '../../domain/task/events.js';
import { fireIdOf } from '../../domain/task/fireId.js';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import { silentLogger } from '../../src/node/logger.js';
import { encodeTaskEvent } from '../../src/node/taskCodec.js';
import { TaskRecord } from '../../src/node/taskRecord.js';
import { TaskRetention } from '../../src/node/taskRetention.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import { T0, advance, spec } from './support/taskFixtures.js';

const S = 1_000;
const stream = taskStreamOf('t1');

/** A task that fires once a second, answered at once, written to a store as a node would. */
const busyTask = async () => {
  const clock = new SimulatedClock(T0 + 30 * S);
  const store = new InMemoryEventStore();
  const record = new TaskRecord('t1');
  const step = async (command: TaskCommand): Promise<void> => {
    const decided = decide(command, record.state);
    await store.appendToStream(
      stream,
      decided.map((e) => encodeTaskEvent(e, { actor: 'node:n1' }, clock.now())),
      { expectedRevision: record.revision < 0n ? 'no_stream' : record.revision },
    );
    for (const e of decided) record.apply(e, record.revision + 1n);
  };
  await step({ type: 'CreateTask', spec: spec({ overlap: 'allow' }), now: T0 });
  let second = 1;
  const fireOnce = async (): Promise<void> => {
    const at = T0 + second++ * S;
    await step(advance(at));
    await step({
      type: 'RecordOutcome',
      outcome: { fireId: fireIdOf('t1', at), attempt: 1, status: 'succeeded', at: at + 5 },
    });
  };
  for (let i = 0; i < 20; i++) await fireOnce();
  return { clock, store, record, step, fireOnce };
};

describe('TaskRetention', () => {
  it('captures at the new head when the task was appended to during its look, and truncates', async () => {
    const { clock, store, record, step, fireOnce } = await busyTask();
    const tried: bigint[] = [];
    const retention = new TaskRetention({
      store,
      clock,
      logger: silentLogger,
      options: { maxFires: 3, checkEvery: 1 },
      held: () => record,
      capture: async (_taskId, head, history) => {
        tried.push(head);
        // The first two tries lose the race: the task fired while the stream was read.
        if (tried.length <= 2 || record.revision !== head) {
          await fireOnce();
          return false;
        }
        await step({ type: 'CaptureState', now: clock.now(), history });
        return true;
      },
    });
    retention.consider(record);
    for (let i = 0; i < 200 && (await store.readStream(stream, { maxCount: 1 }))[0]?.revision === 0n; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    await retention.stop();

    expect(tried).toHaveLength(3);
    expect(tried[1]).toBeGreaterThan(tried[0]!);
    const kept = await store.readStream(stream);
    expect(kept[0]!.revision).toBeGreaterThan(0n);
    const capture = kept.find((e) => e.type === 'TaskStateCaptured');
    expect(capture?.revision).toBe(tried[2]! + 1n);
    // The history in the capture holds the task's creation and first owner, read before the first head.
    const { history } = capture?.data as { history: { definitions: unknown[]; ownership: unknown[] } };
    expect([history.definitions.length, history.ownership.length]).toEqual([1, 1]);
  });
});
