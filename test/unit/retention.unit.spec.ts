import { describe, expect, it } from 'vitest';
import { decide, type TaskCommand } from '../../domain/task/decide.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { fireIdOf } from '../../domain/task/fireId.js';
import { RetentionScan, retentionPolicyOf, type RetentionPolicy } from '../../domain/task/retention.js';
import { foldTask } from '../../domain/task/state.js';
import { T0, advance, created, spec } from './support/taskFixtures.js';

const S = 1_000;

/**
 * A task firing every second (overlap `allow`). Each fire is answered after `lag` more fires have
 * fired (0: at once), at the time of the latest one + 10 ms; `unanswered` ticks never are.
 */
const firing = (ticks: number, options: { lag?: number; unanswered?: number[]; maxAttempts?: number } = {}) => {
  const events: TaskEvent[] = [
    created(spec({ overlap: 'allow', retry: { maxAttempts: options.maxAttempts ?? 1, backoff: { jitter: 0 } } })),
  ];
  const step = (command: TaskCommand) => events.push(...decide(command, foldTask('t1', events)));
  const lag = options.lag ?? 0;
  for (let i = 1; i <= ticks; i++) {
    step(advance(T0 + i * S));
    const answered = i - lag;
    if (answered < 1 || options.unanswered?.includes(answered)) continue;
    step({
      type: 'RecordOutcome',
      outcome: { fireId: fireIdOf('t1', T0 + answered * S), attempt: 1, status: 'succeeded', at: T0 + i * S + 10 },
    });
  }
  return { events, step };
};

const cutOf = (events: TaskEvent[], policy: RetentionPolicy, now: number): number | null => {
  const scan = new RetentionScan(policy, now);
  for (const [revision, e] of events.entries()) if (!scan.add(revision, e)) break;
  return scan.cut(events.length);
};

/** Revision of the first attempt of tick `i`. */
const fireRevision = (events: TaskEvent[], i: number): number =>
  events.findIndex((e) => e.type === 'TaskFired' && e.data.fireId === fireIdOf('t1', T0 + i * S));

const keeps = (events: TaskEvent[], cut: number) =>
  events
    .slice(cut)
    .filter((e): e is Extract<TaskEvent, { type: 'TaskFired' }> => e.type === 'TaskFired' && e.data.attempt === 1)
    .map((e) => (Date.parse(e.data.scheduledAt) - T0) / S);

describe('where retention truncates a task stream', () => {
  it('keeps the last maxFires fires whole: the cut is at the first attempt of the oldest one kept', () => {
    const { events } = firing(10);
    const cut = cutOf(events, { maxAgeMs: null, maxFires: 3 }, T0 + 11 * S) as number;
    expect(cut).toBe(fireRevision(events, 8));
    expect(keeps(events, cut)).toEqual([8, 9, 10]);
  });

  it('keeps what is younger than maxAge, and everything when nothing is older', () => {
    const { events } = firing(10);
    const cut = cutOf(events, { maxAgeMs: 4_500, maxFires: null }, T0 + 11 * S) as number;
    expect(keeps(events, cut)).toEqual([7, 8, 9, 10]);
    expect(cutOf(events, { maxAgeMs: 60_000, maxFires: null }, T0 + 11 * S)).toBeNull();
  });

  it('with both limits, a fire goes when either says so', () => {
    const { events } = firing(10);
    const now = T0 + 11 * S;
    expect(keeps(events, cutOf(events, { maxAgeMs: 4_500, maxFires: 2 }, now) as number)).toEqual([9, 10]);
    expect(keeps(events, cutOf(events, { maxAgeMs: 2_500, maxFires: 5 }, now) as number)).toEqual([9, 10]);
  });

  it('drops every fire before the capture when none is young enough, but never past it', () => {
    const { events } = firing(5);
    expect(cutOf(events, { maxAgeMs: 1_000, maxFires: null }, T0 + 60 * S)).toBe(events.length);
  });

  it('keeps the first attempt of every fire still open: in flight, or waiting for its retry', () => {
    const { events: unanswered } = firing(10, { unanswered: [6] });
    const cut = cutOf(unanswered, { maxAgeMs: null, maxFires: 2 }, T0 + 11 * S) as number;
    expect(cut).toBe(fireRevision(unanswered, 6));
    expect(keeps(unanswered, cut)).toEqual([6, 7, 8, 9, 10]);

    const { events, step } = firing(6, { maxAttempts: 2 });
    step(advance(T0 + 7 * S));
    step({
      type: 'RecordOutcome',
      outcome: { fireId: fireIdOf('t1', T0 + 7 * S), attempt: 1, status: 'failed', at: T0 + 7 * S + 5 },
    });
    step(advance(T0 + 8 * S)); // tick 8 fires; the retry of tick 7 is due only at 8.005 s
    expect(foldTask('t1', events).inFlight.map((f) => f.retryAt !== null)).toEqual([true, false]);
    expect(cutOf(events, { maxAgeMs: null, maxFires: 1 }, T0 + 9 * S)).toBe(fireRevision(events, 7));
  });

  it('cuts through overlapping fires that have finished, but not before an open one', () => {
    // Every fire is answered after the next two fired: there is no revision between two fires.
    const { events } = firing(10, { lag: 2 });
    const cut = cutOf(events, { maxAgeMs: null, maxFires: 3 }, T0 + 11 * S) as number;
    // Ticks 9 and 10 are still open; 8 is the oldest of the last three.
    expect(cut).toBe(fireRevision(events, 8));
    expect(events.slice(cut).some((e) => e.type === 'TaskSucceeded')).toBe(true);
    const { events: stuck } = firing(10, { lag: 2, unanswered: [4] });
    expect(cutOf(stuck, { maxAgeMs: null, maxFires: 3 }, T0 + 11 * S)).toBe(fireRevision(stuck, 4));
  });

  it('removes nothing when the stream holds no more than the policy keeps', () => {
    const { events } = firing(3);
    expect(cutOf(events, { maxAgeMs: null, maxFires: 3 }, T0 + 4 * S)).toBeNull();
    expect(cutOf(events, { maxAgeMs: null, maxFires: 10 }, T0 + 4 * S)).toBeNull();
    expect(new RetentionScan({ maxAgeMs: null, maxFires: 1 }, T0).cut(0)).toBeNull();
  });

  it('with an age limit alone, stops reading at the first event inside the window', () => {
    const { events } = firing(100);
    const scan = new RetentionScan({ maxAgeMs: 10_500, maxFires: null }, T0 + 100 * S);
    let read = 0;
    for (const [revision, e] of events.entries()) {
      read++;
      if (!scan.add(revision, e)) break;
    }
    const cut = scan.cut(events.length) as number;
    expect(keeps(events, cut)).toEqual(Array.from({ length: 11 }, (_, i) => 90 + i));
    // It read up to the first event inside the window, not the 21 events after it.
    expect(read).toBe(cut + 1);
    expect(events.length - read).toBe(21);
  });

  it('takes a stream that starts after a truncation (the scan starts where reads start)', () => {
    const { events } = firing(10);
    const from = fireRevision(events, 5);
    const scan = new RetentionScan({ maxAgeMs: null, maxFires: 3 }, T0 + 11 * S);
    for (let r = from; r < events.length; r++) scan.add(r, events[r] as TaskEvent);
    expect(scan.cut(events.length)).toBe(fireRevision(events, 8));
    const kept = new RetentionScan({ maxAgeMs: null, maxFires: 6 }, T0 + 11 * S);
    for (let r = from; r < events.length; r++) kept.add(r, events[r] as TaskEvent);
    expect(kept.cut(events.length)).toBeNull();
  });
});

describe('the policy of a task', () => {
  const node: RetentionPolicy = { maxAgeMs: 90 * 86_400_000, maxFires: null };

  it("is the node's, unless the task has its own; {} keeps everything", () => {
    expect(retentionPolicyOf(node, spec())).toEqual(node);
    expect(retentionPolicyOf(node, spec({ retention: { maxFires: 5 } }))).toEqual({ maxAgeMs: null, maxFires: 5 });
    expect(retentionPolicyOf(node, spec({ retention: { maxAge: '1h' } }))).toEqual({
      maxAgeMs: 3_600_000,
      maxFires: null,
    });
    expect(retentionPolicyOf(node, spec({ retention: {} }))).toBeNull();
    expect(retentionPolicyOf({ maxAgeMs: null, maxFires: null }, spec())).toBeNull();
  });

  it('refuses a bad retention in a task document, naming the field', () => {
    expect(() => spec({ retention: { maxFires: 0 } })).toThrow(/maxFires/);
    expect(() => spec({ retention: { maxAge: '10ms' } })).toThrow(/at least 1s/);
    expect(() => spec({ retention: { keep: 3 } as never })).toThrow();
  });
});
