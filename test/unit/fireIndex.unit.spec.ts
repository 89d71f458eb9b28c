import { describe, expect, it } from 'vitest';
import { fireIndex } from '../../domain/projections/fireIndex.js';
import { fireIdOf } from '../../domain/task/fireId.js';
import { foldReadModel } from '../../domain/projections/foldReadModel.js';
import { WATERMARK_SLACK_MS } from '../../domain/projections/readModel.js';
import { ProjectionSpec, by, life, logOf } from './support/projectionFixtures.js';
import { T0, spec } from './support/taskFixtures.js';

const S = 1_000;
const index = ProjectionSpec.for(fireIndex());

describe('fire index', () => {
  it('has one row per attempt: when it was due, when and where it fired, how late, how it ended', () => {
    const task = life(spec({ retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } } }), T0)
      .advance(T0 + S + 12)
      .fail(T0 + S + 40, 'db down')
      .advance(T0 + 2 * S + 60)
      .succeed(T0 + 2 * S + 90);
    const fireId = fireIdOf('t1', T0 + S);
    index.given(task.events).then('attempts', [
      {
        taskId: 't1',
        fireId,
        attempt: 1,
        trigger: 'schedule',
        scheduledAt: T0 + S,
        firedAt: T0 + S + 12,
        latenessMs: 12,
        node: 'n1',
        epoch: 7,
        status: 'failed',
        willRetryAt: expect.any(Number),
        outcomeAt: T0 + S + 40,
        message: 'db down',
      },
      { fireId, attempt: 2, trigger: 'retry', latenessMs: null, status: 'succeeded', willRetryAt: null, message: null },
    ]);
  });

  it('a first attempt with no outcome yet is in flight; a timed-out one says so', () => {
    const task = life(spec({ timeout: '100ms' }), T0).advance(T0 + S);
    index.given(task.events).then('attempts', [{ attempt: 1, status: 'in-flight', outcomeAt: null }]);
    index.given(task.advance(T0 + S + 100).events).then('attempts', [{ attempt: 1, status: 'timed-out' }]);
  });

  it('a manual fire names who asked for it and why', () => {
    const events = life(spec(), T0).trigger(T0 + 10, 'smoke test').events;
    const fired = events.at(-1)!;
    index
      .given([...events.slice(0, -1), by('user:alice', fired)])
      .then('attempts', [{ trigger: 'manual', actor: 'user:alice', reason: 'smoke test', latenessMs: 0 }]);
  });

  it('records skipped and misfired tick ranges', () => {
    const task = life(spec({ misfire: { policy: 'skip' } }), T0).advance(T0 + 10 * S);
    index
      .given(task.events)
      .then('gaps', [{ kind: 'misfired', action: 'dropped', policy: 'skip', count: 9, cause: null }]);
    const overloaded = life(spec({ misfire: { policy: 'fire-once' } }), T0).advance(T0 + 3 * S + 50, undefined, true);
    index
      .given(overloaded.events)
      .then('gaps', [{ kind: 'misfired', action: 'coalesced', policy: 'fire-once', count: 2, cause: 'overload' }]);
  });

  it('keeps rows for its retention only, and does not bring back an outcome of a dropped attempt', () => {
    const model = ProjectionSpec.for(fireIndex({ keepMs: 60 * S }));
    const task = life(spec({ overlap: 'allow' }), T0)
      .advance(T0 + S)
      .advance(T0 + 100 * S);
    const rows = model.given(task.succeed(T0 + 100 * S + 5).events).rows();
    const kept = [...rows.attempts.values()];
    expect(kept.every((r) => r.firedAt >= T0 + 40 * S)).toBe(true);
    expect(kept.length).toBeGreaterThan(0);
  });

  it('applies an outcome to an attempt retention has not cut yet (writes are kept by the very cut that prunes)', () => {
    const keepMs = 64 * S; // cut in whole seconds
    const model = ProjectionSpec.for(fireIndex({ keepMs }));
    // Half a second past the attempt's age limit, but the cut (rounded down to its step) is not past it.
    const task = life(spec({ timeout: '5m' }), T0)
      .advance(T0 + S)
      .succeed(T0 + S + keepMs + 500);
    model.given(task.events).then('attempts', [{ firedAt: T0 + S, status: 'succeeded' }]);
  });
});

describe('the watermark (time as the log tells it)', () => {
  it('an event from a clock days ahead moves it at most an hour past when the store recorded it', () => {
    const model = fireIndex({ keepMs: 60 * S });
    const log = logOf(
      life(spec({ overlap: 'allow' }), T0)
        .advance(T0 + S)
        .advance(T0 + 2 * S).events,
    );
    const skewed = log.map((e, i) => (i === log.length - 1 ? { ...e, occurredAt: e.occurredAt + 10 * 86_400_000 } : e));
    const { rows, watermark } = foldReadModel(model, skewed);
    expect(watermark).toBe(log.at(-1)!.recordedAt + WATERMARK_SLACK_MS);
    // The earlier fires are an hour and a bit "old" now, no more: retention of a minute drops them, as it should,
    // but a day's retention would keep them, where the skewed event alone would have made them ten days old.
    expect(foldReadModel(fireIndex({ keepMs: 86_400_000 }), skewed).rows.attempts.size).toBe(2);
    expect(rows.attempts.size).toBe(0);
  });
});
