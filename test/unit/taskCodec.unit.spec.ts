import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ClusterEvent } from '../../domain/cluster/events.js';
import { emptyTaskHistory } from '../../domain/task/capture.js';
import { decide } from '../../domain/task/decide.js';
import { CLUSTER_STREAM, EventMetadata, TaskEvent } from '../../domain/task/events.js';
import { TaskSpec } from '../../domain/task/spec.js';
import { foldTask } from '../../domain/task/state.js';
import { decodeLogEvent } from '../../src/projections/projectedEvent.js';
import { decodeTaskEvent } from '../../src/node/taskCodec.js';
import type { RecordedEvent } from '../../src/store/eventStore.js';
import { life } from './support/projectionFixtures.js';
import { T0, spec } from './support/taskFixtures.js';

const S = 1_000;

/** Every kind of event a task's stream holds, written by the real decider. */
const history = (): TaskEvent[] => {
  const withPayload = spec({
    retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } },
    timeout: '500ms',
    payload: { invoice: [1, 2, { due: '2026-01-01', paid: false, amount: 12.5 }], note: null },
    labels: { team: 'billing' },
  });
  const task = life(withPayload, T0)
    .advance(T0 + S)
    .fail(T0 + S + 10, 'boom')
    .advance(T0 + 2 * S + 20)
    .succeed(T0 + 2 * S + 30)
    .advance(T0 + 3 * S)
    .advance(T0 + 3 * S + 600)
    .trigger(T0 + 4 * S, 'by hand')
    .advance(T0 + 10 * S, { node: 'n2', epoch: 9, reason: 'node-lost' })
    .update(TaskSpec.parse({ ...withPayload, payload: 'v2', schedule: { cron: '*/5 * * * * *' } }), T0 + 11 * S, 'v2')
    .pause(T0 + 12 * S, 'maintenance')
    .resume(T0 + 13 * S)
    .delete(T0 + 14 * S, 'gone')
    .restore(T0 + 15 * S);
  const captured = decide(
    { type: 'CaptureState', now: T0 + 16 * S, history: emptyTaskHistory() },
    foldTask(withPayload.id, task.events),
  );
  const skipping = life(spec({ id: 't2', misfire: { policy: 'skip' } }), T0)
    .advance(T0 + S)
    .advance(T0 + 5 * S)
    .advance(T0 + 9 * S, undefined, true);
  return [...task.events, ...captured, ...skipping.events];
};

/** As the store hands an event back: data through JSON, as read from a file or the network. */
const recorded = (type: string, data: unknown, revision = 0): RecordedEvent => ({
  id: '00000000-0000-4000-8000-000000000000',
  stream: 'kairos-task-t1',
  revision: BigInt(revision),
  position: BigInt(revision + 1),
  type,
  data: JSON.parse(JSON.stringify(data)) as unknown,
  metadata: { actor: 'user:ana', correlationId: 'c-1' },
  time: new Date(T0),
});

describe('decoding the log with compiled schemas', () => {
  it('decodes every event Kairos writes exactly as the runtime schema does', () => {
    const events = history();
    expect(new Set(events.map((e) => e.type)).size).toBeGreaterThanOrEqual(14);
    events.forEach((e, i) => {
      const decoded = decodeTaskEvent(recorded(e.type, e.data, i));
      expect(decoded, e.type).toEqual({ ok: true, event: TaskEvent.parse(JSON.parse(JSON.stringify(e))) });
    });
  });

  it('refuses what the runtime schema refuses, naming the field the same way', () => {
    const fired = history().find((e) => e.type === 'TaskFired')!;
    const created = history().find((e) => e.type === 'TaskCreated')!;
    const base = JSON.parse(JSON.stringify(fired.data)) as Record<string, unknown>;
    const spec = (created.data as { spec: Record<string, unknown> }).spec;
    const bad: Array<[string, string, unknown, string]> = [
      ['a missing field', 'TaskFired', { ...base, node: undefined }, 'data.node'],
      ['a time that is not one', 'TaskFired', { ...base, firedAt: '2026-01-01Tnoon:00.000Z' }, 'data.firedAt'],
      ['a fractional epoch', 'TaskFired', { ...base, epoch: 1.5 }, 'data.epoch'],
      ['attempt 0', 'TaskFired', { ...base, attempt: 0 }, 'data.attempt'],
      ['an unknown type', 'TaskExploded', base, 'type'],
      [
        'a bad schedule',
        'TaskCreated',
        { ...created.data, spec: { ...spec, schedule: { every: -1 } } },
        'data.spec.schedule',
      ],
    ];
    for (const [what, type, data, field] of bad) {
      const decoded = decodeTaskEvent(recorded(type, data));
      const runtime = TaskEvent.safeParse({ type, data: JSON.parse(JSON.stringify(data)) });
      expect(runtime.success, what).toBe(false);
      expect(decoded.ok, what).toBe(false);
      if (!decoded.ok) {
        expect(decoded.error, what).toContain(`kairos-task-t1@0 (${type}): ${field}`);
        const issue = runtime.error!.issues[0]!;
        expect(decoded.error, what).toContain(`${issue.path.join('.')}: ${issue.message}`);
      }
    }
    // An unknown field is dropped, as the runtime schema drops it.
    expect(decodeTaskEvent(recorded('TaskFired', { ...base, colour: 'red' }))).toEqual({
      ok: true,
      event: TaskEvent.parse({ type: 'TaskFired', data: base }),
    });
    // Valid but unusual: a time with an offset is still a time.
    expect(decodeTaskEvent(recorded('TaskFired', { ...base, firedAt: '2026-01-01T13:00:01.000+01:00' })).ok).toBe(true);
  });

  it('decodes metadata and cluster events as their runtime schemas do', () => {
    const metadata = { actor: 'node:n1', correlationId: 'c', causationId: 'd', node: 'n1' };
    const at = new Date(T0).toISOString();
    const members = [
      { type: 'NodeJoined', data: { v: 1, node: 'n1', weight: 2, labels: { zone: 'a' }, at, extra: 'dropped' } },
      { type: 'LeaderElected', data: { v: 1, node: 'n1', previous: null, at } },
    ];
    for (const member of members) {
      const event = decodeLogEvent({ ...recorded(member.type, member.data), stream: CLUSTER_STREAM, metadata });
      expect(event.ok, member.type).toBe(true);
      if (event.ok) {
        expect(event.event.event).toEqual(ClusterEvent.parse(member));
        expect(event.event.metadata).toEqual(EventMetadata.parse(metadata));
      }
    }
    const bad = { type: 'NodeJoined', data: { v: 1, node: 'n1', weight: -1, labels: {}, at } };
    const refused = decodeLogEvent({ ...recorded(bad.type, bad.data), stream: CLUSTER_STREAM });
    expect(refused).toMatchObject({ ok: false, error: expect.stringContaining('data.weight') });
    // Metadata that does not decode is dropped, not the event.
    const fired = history().find((e) => e.type === 'TaskFired')!;
    const odd = decodeLogEvent({ ...recorded(fired.type, fired.data), metadata: { actor: 42 } });
    expect(odd.ok && odd.event.metadata).toBeNull();
  });

  it('compiles every schema the log is read with (no reference cycle)', () => {
    for (const schema of [TaskEvent, EventMetadata, ClusterEvent, TaskSpec])
      expect(() => z.compile(schema, { strict: true })).not.toThrow();
  });
});

describe('a task payload', () => {
  const input = { id: 'p1', schedule: { every: '1s' }, target: { topic: 'billing' } };

  it('is any JSON value, kept as given', () => {
    for (const payload of [null, true, 0, -1.5, 'text', [], {}, [1, ['a', { b: null }]], { a: { b: [{ c: 'd' }] } }]) {
      const parsed = TaskSpec.parse({ ...input, payload });
      expect(parsed.payload).toEqual(payload);
    }
    expect(TaskSpec.parse(input).payload).toBeNull();
  });

  it('refuses what is not JSON, naming where it is', () => {
    const cases: Array<[unknown, string]> = [
      [{ when: new Date(T0) }, 'payload.when'],
      [[1, Number.POSITIVE_INFINITY], 'payload.1'],
      [{ a: [{ b: Number.NaN }] }, 'payload.a.0.b'],
      [{ f: () => 1 }, 'payload.f'],
      [{ n: 10n }, 'payload.n'],
      [new Map(), 'payload'],
    ];
    for (const [payload, path] of cases) {
      const parsed = TaskSpec.safeParse({ ...input, payload });
      expect(parsed.success, path).toBe(false);
      expect(
        parsed.error?.issues.map((i) => i.path.join('.')),
        path,
      ).toEqual([path]);
      expect(parsed.error?.issues[0]?.message).toMatch(/must be JSON/);
    }
  });

  it('may share a value between places, but not contain itself', () => {
    const shared = { rate: 2 };
    expect(TaskSpec.parse({ ...input, payload: { a: shared, b: [shared, shared] } }).payload).toEqual({
      a: shared,
      b: [shared, shared],
    });
    const loop: Record<string, unknown> = { x: [1] };
    (loop.x as unknown[]).push({ back: loop });
    const parsed = TaskSpec.safeParse({ ...input, payload: loop });
    expect(parsed.error?.issues.map((i) => i.path.join('.'))).toEqual(['payload.x.1.back']);
  });

  it('is judged without recursion: a payload nested 100,000 deep does not overflow the stack', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(TaskSpec.safeParse({ ...input, payload: deep }).success).toBe(true);
    let bad: unknown = Number.NaN;
    for (let i = 0; i < 100_000; i++) bad = { x: bad };
    expect(TaskSpec.safeParse({ ...input, payload: bad }).success).toBe(false);
  });
});
