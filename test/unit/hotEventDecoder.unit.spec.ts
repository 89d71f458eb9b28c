import { describe, expect, it } from 'vitest';
import { TaskEvent } from '../../domain/task/events.js';
import { decodeHotEvent } from '../../src/node/hotEventDecoder.js';
import { life } from './support/projectionFixtures.js';
import { T0, spec } from './support/taskFixtures.js';

const S = 1_000;

/** Every kind of busy event, written by the real decider: fires, retries, outcomes, claims, releases, skips, misfires. */
const history = (): TaskEvent[] => {
  const task = life(spec({ retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } }, timeout: '500ms' }), T0)
    .advance(T0 + S)
    .fail(T0 + S + 10, 'boom')
    .advance(T0 + 2 * S + 20)
    .succeed(T0 + 2 * S + 30)
    .advance(T0 + 3 * S)
    .advance(T0 + 3 * S + 600)
    .trigger(T0 + 4 * S, 'by hand')
    .advance(T0 + 10 * S, { node: 'n2', epoch: 9, reason: 'node-lost' });
  const skipping = life(spec({ id: 't2', misfire: { policy: 'skip' } }), T0)
    .advance(T0 + S)
    .advance(T0 + 5 * S)
    .advance(T0 + 9 * S, undefined, true);
  return [...task.events, ...skipping.events];
};

/** Events as the store hands them back: data through JSON, as read from a file or the network. */
const stored = (e: TaskEvent) => ({
  type: e.type,
  data: JSON.parse(JSON.stringify(e.data)) as Record<string, unknown>,
});

describe('hot event decoder', () => {
  it('decodes every busy event Kairos writes exactly as the schema does', () => {
    const events = history();
    const types = new Set<string>();
    for (const e of events) {
      const { type, data } = stored(e);
      const hot = decodeHotEvent(type, data);
      if (!hot) continue;
      types.add(type);
      expect(hot, type).toEqual(TaskEvent.parse({ type, data }));
    }
    expect([...types].sort()).toEqual(
      ['TaskAssigned', 'TaskFailed', 'TaskFired', 'TaskMisfired', 'TaskReassigned', 'TaskSkipped', 'TaskSucceeded']
        .filter((t) => events.some((e) => e.type === t))
        .sort(),
    );
    expect(types.size).toBeGreaterThanOrEqual(6);
    expect(events.some((e) => e.type === 'TaskMisfired' && e.data.cause === 'overload')).toBe(true);
  });

  it('leaves definitions to the schema (their specs get defaults)', () => {
    const [created] = history();
    expect(decodeHotEvent(created!.type, stored(created!).data)).toBeUndefined();
  });

  it('leaves anything not exactly of the shapes it knows to the schema', () => {
    const fired = history().find((e) => e.type === 'TaskFired')!;
    const base = stored(fired).data;
    const variants: Array<[string, Record<string, unknown>]> = [
      ['an unknown field', { ...base, colour: 'red' }],
      ['a missing field', { ...base, node: undefined }],
      ['an upper-case fire id', { ...base, fireId: String(base.fireId).toUpperCase() }],
      ['a time with an offset', { ...base, firedAt: '2026-01-01T13:00:01.000+01:00' }],
      ['a time that is not one', { ...base, firedAt: '2026-01-01Tnoon:00.000Z' }],
      ['a fractional epoch', { ...base, epoch: 1.5 }],
      ['attempt 0', { ...base, attempt: 0 }],
      ['an unknown trigger', { ...base, trigger: 'whim' }],
      ['another version', { ...base, v: 2 }],
    ];
    for (const [what, data] of variants) expect(decodeHotEvent('TaskFired', data), what).toBeUndefined();
    // Valid but unusual: the schema accepts it, so a caller falling back to it loses nothing.
    expect(TaskEvent.safeParse({ type: 'TaskFired', data: variants[3]![1] }).success).toBe(true);
  });
});
