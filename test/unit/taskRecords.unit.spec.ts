import { describe, expect, it } from 'vitest';
import { decide, decideFolded } from '../../domain/task/decide.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { evolve, foldTask } from '../../domain/task/state.js';
import { silentLogger } from '../../src/node/logger.js';
import { TaskRecords } from '../../src/node/taskRecords.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import { LEASE, T0, advance, spec } from './support/taskFixtures.js';

const S = 1_000;

/** Records whose `applied` calls are kept, with t1 created, its claim and a fire decided, one failed. */
const setUp = () => {
  const applied: string[] = [];
  const records = new TaskRecords({
    store: new InMemoryEventStore(),
    logger: silentLogger,
    pageSize: 100,
    applied: (record, event) => applied.push(`${event.type}@${record.revision}`),
  });
  const record = records.recordOf('t1');
  const s = spec({ timeout: '500ms', retry: { maxAttempts: 3, backoff: { initial: '1s', jitter: 0 } } });
  const history: TaskEvent[] = decide({ type: 'CreateTask', spec: s, now: T0 }, record.state);
  history.push(...decide(advance(T0 + S), foldTask('t1', history)));
  history.forEach((e, i) => records.applyAt(record, e, BigInt(i)));
  applied.length = 0;
  // A time step with a timeout, its retry and the next tick: several events, one decision.
  const decision = decideFolded(advance(T0 + 2 * S + 600, { ...LEASE, epoch: LEASE.epoch + 1 }), record.state);
  expect(decision.events.length).toBeGreaterThanOrEqual(3);
  return { records, record, applied, decision, decidedOn: record.state, first: BigInt(history.length) };
};

describe('TaskRecords.applyDecided', () => {
  it('takes the decision’s state when the record still holds the state it was decided on', () => {
    const { records, record, applied, decision, decidedOn, first } = setUp();
    records.applyDecided(record, decision.events, first, { decidedOn, state: decision.state });
    expect(record.state).toBe(decision.state);
    expect(record.state).toEqual(decision.events.reduce(evolve, decidedOn));
    expect(record.revision).toBe(first + BigInt(decision.events.length - 1));
    expect(records.maxEpoch).toBe(LEASE.epoch + 1);
    const last = Number(record.revision);
    expect(applied).toEqual(decision.events.map((e) => `${e.type}@${last}`));
  });

  it('applies the rest one by one when the log follower applied some of them first', () => {
    for (let k = 1; k <= 3; k++) {
      const { records, record, applied, decision, decidedOn, first } = setUp();
      decision.events.slice(0, k).forEach((e, i) => records.applyAt(record, e, first + BigInt(i)));
      records.applyDecided(record, decision.events, first, { decidedOn, state: decision.state });
      expect(record.state, `${k} applied first`).toEqual(decision.events.reduce(evolve, decidedOn));
      expect(record.revision).toBe(first + BigInt(decision.events.length - 1));
      // Each event reached `applied` once, whichever path brought it.
      expect(applied.map((a) => a.split('@')[0])).toEqual(decision.events.map((e) => e.type));
    }
  });

  it('does not take a state decided on another one, even at the same revision', () => {
    const { records, record, decision, decidedOn, first } = setUp();
    const other = { ...decidedOn, failureStreak: 7 };
    records.applyDecided(record, decision.events, first, { decidedOn: other, state: decision.state });
    // Folded afresh from what the record holds, not taken.
    expect(record.state).not.toBe(decision.state);
    expect(record.state).toEqual(decision.events.reduce(evolve, decidedOn));
    expect(record.revision).toBe(first + BigInt(decision.events.length - 1));
  });
});
