import { describe, expect, it } from 'vitest';
import { auditIndex, type AuditEntryRow, type AuditSpecRow } from '../../domain/projections/auditIndex.js';
import { foldReadModel } from '../../domain/projections/foldReadModel.js';
import { keyText, type ProjectedEvent, type RowReader } from '../../domain/projections/readModel.js';
import { SECRET_SET } from '../../domain/projections/redaction.js';
import { SECRET_CHANGED } from '../../domain/projections/specDiff.js';
import { emptyTaskHistory, foldTaskHistory } from '../../domain/task/capture.js';
import { decide } from '../../domain/task/decide.js';
import type { EventMetadata, TaskEvent, TaskEventOf } from '../../domain/task/events.js';
import { foldTask } from '../../domain/task/state.js';
import { ProjectionSpec, by, life, logOf } from './support/projectionFixtures.js';
import { T0, spec } from './support/taskFixtures.js';

const S = 1_000;
const SECRET = 'whsec-0123456789-abcdef';
const ROTATED = 'whsec-fedcba-9876543210';
const model = auditIndex();
const audit = ProjectionSpec.for(model);

const OPERATOR_TYPES = new Set([
  'TaskCreated',
  'TaskUpdated',
  'TaskPaused',
  'TaskResumed',
  'TaskDeleted',
  'TaskRestored',
]);
const isManual = (e: TaskEvent): e is TaskEventOf<'TaskFired'> => e.type === 'TaskFired' && e.data.trigger === 'manual';

/** Operators' events carry what the API records (actor, correlation id, node); the rest the node's own. */
const asRecorded = (events: TaskEvent[], operator: EventMetadata) =>
  events.map((e) => (OPERATOR_TYPES.has(e.type) || isManual(e) ? by(operator.actor, e, operator) : e));

const webhook = (secret: string, url = 'https://hooks.example/run') => spec({ target: { http: { url, secret } } });

describe('audit', () => {
  it('has one entry per action, with who, where, why and under which correlation id', () => {
    const events = life(spec(), T0)
      .pause(T0 + S, 'maintenance')
      .resume(T0 + 2 * S)
      .update(spec({ timeout: '5s' }), T0 + 3 * S, 'faster')
      .trigger(T0 + 4 * S, 'smoke test')
      .delete(T0 + 5 * S, 'gone')
      .restore(T0 + 6 * S, 'back').events;
    const fired = events.find(isManual)!;
    const operator = { actor: 'user:alice', correlationId: 'CHG-1', node: 'node-a' };
    const rows = audit.given(asRecorded(events, operator)).then('entries', [
      { revision: 0, action: 'created', at: T0, reason: null, spec: { id: 't1', timeout: 60_000 } },
      { revision: 1, action: 'paused', at: T0 + S, reason: 'maintenance', changes: [], spec: null },
      { revision: 2, action: 'resumed', at: T0 + 2 * S, reason: null },
      {
        revision: 3,
        action: 'updated',
        at: T0 + 3 * S,
        reason: 'faster',
        changes: [{ path: 'timeout', before: 60_000, after: 5_000 }],
        spec: { timeout: 5_000 },
      },
      // Revision 4 is the ownership claim written with the manual fire: not an audit entry.
      { revision: 5, action: 'triggered', at: T0 + 4 * S, reason: 'smoke test', fireId: fired.data.fireId },
      { revision: 6, action: 'deleted', reason: 'gone', fireId: null },
      { revision: 7, action: 'restored', reason: 'back' },
    ]);
    for (const row of rows) expect(row).toMatchObject({ taskId: 't1', ...operator });
  });

  it('names the node from a node:<id> actor when the metadata names none, and null for a user without it', () => {
    const [created, paused] = life(spec(), T0).pause(T0 + S).events;
    audit.given([by('user:bob', created!), by('node:n2', paused!)]).then('entries', [
      { action: 'created', actor: 'user:bob', node: null, correlationId: null },
      { action: 'paused', actor: 'node:n2', node: 'n2' },
    ]);
  });

  it('records no scheduled fire, retry or outcome, and no ownership change', () => {
    const task = life(spec({ retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } } }), T0)
      .advance(T0 + S)
      .fail(T0 + S + 10)
      .advance(T0 + 3 * S, { node: 'n2', epoch: 8 })
      .succeed(T0 + 3 * S + 10);
    expect(task.events.map((e) => e.type)).toEqual(expect.arrayContaining(['TaskAssigned', 'TaskReassigned']));
    audit.given(task.events).then('entries', [{ action: 'created', revision: 0 }]);
  });

  it('diffs each update against the document before it: schedule, target, payload, nested retry fields', () => {
    const first = spec({ payload: { region: 'eu' } });
    const second = spec({ ...first, schedule: { cron: '*/5 * * * *' }, payload: { region: 'us' } });
    const third = spec({ ...second, target: { topic: 'jobs.v2' }, retry: { backoff: { initial: '3s' } } });
    const events = life(first, T0)
      .update(second, T0 + S)
      .update(second, T0 + 2 * S) // changes nothing: the decider writes nothing, so no entry
      .update(third, T0 + 3 * S).events;
    audit.given(events).then('entries', [
      { action: 'created', changes: expect.arrayContaining([{ path: 'payload.region', before: null, after: 'eu' }]) },
      {
        action: 'updated',
        revision: 1,
        changes: [
          { path: 'payload.region', before: 'eu', after: 'us' },
          { path: 'schedule.cron', before: null, after: '*/5 * * * *' },
          { path: 'schedule.every', before: 1_000, after: null },
          { path: 'schedule.timezone', before: null, after: 'UTC' },
        ],
      },
      {
        action: 'updated',
        revision: 2,
        changes: [
          { path: 'retry.backoff.initial', before: 1_000, after: 3_000 },
          { path: 'target.topic', before: 'jobs', after: 'jobs.v2' },
        ],
        spec: { target: { topic: 'jobs.v2' }, retry: { backoff: { initial: 3_000 } } },
      },
    ]);
  });

  it('never holds a webhook secret, in any row of any table; a rotation shows as changed', () => {
    const events = life(webhook(SECRET), T0)
      .update(webhook(ROTATED), T0 + S)
      .update(webhook(ROTATED, 'https://hooks.example/v2'), T0 + 2 * S)
      .update(spec(), T0 + 3 * S).events;
    const given = audit.given(events);
    given.then('entries', [
      { action: 'created', spec: { target: { http: { secret: SECRET_SET } } } },
      { action: 'updated', changes: [{ path: 'target.http.secret', before: SECRET_CHANGED, after: SECRET_CHANGED }] },
      { action: 'updated', changes: [{ path: 'target.http.url', before: 'https://hooks.example/run' }] },
      {
        action: 'updated',
        changes: expect.arrayContaining([{ path: 'target.http.secret', before: SECRET_SET, after: null }]),
      },
    ]);
    const rows = given.rows();
    const text = JSON.stringify([[...rows.entries.values()], [...rows.specs.values()]]);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(ROTATED);
  });
});

describe('audit after retention', () => {
  const operator = { actor: 'user:alice', correlationId: 'CHG-7', node: 'node-a' };

  /** The capture a node appends (`CaptureState`): the state so far, and the history folded from the stored events. */
  const captureAfter = (stored: ReturnType<typeof asRecorded>, events: TaskEvent[], now: number): TaskEvent[] => {
    const history = emptyTaskHistory();
    for (const e of logOf(stored)) if (e.kind === 'task') foldTaskHistory(history, e.event, e.revision, e.metadata!);
    return decide({ type: 'CaptureState', now, history }, foldTask('t1', events));
  };

  /**
   * A whole stream with a real capture in it (`CaptureState`, with the history the node folds), then
   * more changes. Returns the log and the capture's revision.
   */
  const streamWithCapture = (): { log: ProjectedEvent[]; at: number } => {
    const task = life(webhook(SECRET), T0)
      .advance(T0 + S)
      .succeed(T0 + S + 10)
      .update(webhook(SECRET, 'https://hooks.example/v2'), T0 + 2 * S, 'new endpoint')
      .pause(T0 + 3 * S, 'maintenance')
      .resume(T0 + 4 * S)
      .advance(T0 + 5 * S)
      .succeed(T0 + 5 * S + 10)
      .update(webhook(ROTATED, 'https://hooks.example/v2'), T0 + 6 * S)
      .delete(T0 + 7 * S, 'gone')
      .restore(T0 + 8 * S);
    const before = asRecorded(task.events, operator);
    const captured = captureAfter(before, task.events, T0 + 9 * S);
    const later = task
      .update(spec({ payload: { v: 2 } }), T0 + 10 * S)
      .trigger(T0 + 11 * S, 'after the capture')
      .pause(T0 + 12 * S)
      .events.slice(before.length);
    return {
      log: logOf([...before, ...captured, ...asRecorded(later, operator)]),
      at: before.length,
    };
  };

  it('restores from a capture what the truncated events said, equal to the audit of the whole stream', () => {
    const { log, at } = streamWithCapture();
    const whole = foldReadModel(model, log).rows;
    expect([...whole.entries.values()].map((e) => e.action)).toEqual(
      expect.arrayContaining(['created', 'updated', 'paused', 'resumed', 'deleted', 'restored', 'triggered']),
    );
    // Truncated anywhere up to the capture: what is left may begin with fires and changes made before it.
    for (let cut = 1; cut <= at; cut++) {
      const truncated = foldReadModel(
        model,
        log.filter((e) => e.revision >= cut),
      ).rows;
      expect(truncated.entries, `cut at ${cut}`).toEqual(whole.entries);
      expect(truncated.specs, `cut at ${cut}`).toEqual(whole.specs);
      const text = JSON.stringify([[...truncated.entries.values()], [...truncated.specs.values()]]);
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(ROTATED);
    }
  });

  it('leaves an update whose previous document was cut away to the capture, rather than diff it against nothing', () => {
    const { log, at } = streamWithCapture();
    const firstUpdate = log.find((e) => e.event.type === 'TaskUpdated')!;
    const kept = log.filter((e) => e.revision >= firstUpdate.revision);
    const beforeCapture = foldReadModel(model, kept.slice(0, at - firstUpdate.revision)).rows;
    expect(beforeCapture.entries.has(keyText(['t1', firstUpdate.revision]))).toBe(false);
    expect(foldReadModel(model, kept).rows.entries.get(keyText(['t1', firstUpdate.revision]))).toMatchObject({
      action: 'updated',
      reason: 'new endpoint',
      changes: [{ path: 'target.http.url', before: 'https://hooks.example/run', after: 'https://hooks.example/v2' }],
    });
  });

  it('adds nothing when the model saw the whole stream', () => {
    const { log, at } = streamWithCapture();
    const rows = foldReadModel(model, log.slice(0, at)).rows;
    const reader: RowReader<{ entries: AuditEntryRow; specs: AuditSpecRow }> = {
      get: (table, key) => rows[table].get(keyText(key)),
    };
    expect(log[at]!.event.type).toBe('TaskStateCaptured');
    expect(model.evolve(reader, log[at]!, { watermark: 0 })).toEqual([]);
  });

  it('mends entries diffed against the wrong document when events before the capture were scavenged away', () => {
    const { log } = streamWithCapture();
    const whole = foldReadModel(model, log).rows;
    const firstUpdate = log.find((e) => e.event.type === 'TaskUpdated')!;
    const scattered = foldReadModel(
      model,
      log.filter((e) => e !== firstUpdate),
    ).rows;
    expect(scattered.entries).toEqual(whole.entries);
  });

  it('shows only the manual fires still in the stream: a capture does not hold them', () => {
    const events = life(spec(), T0).trigger(T0 + S).events;
    const before = asRecorded(events, operator);
    const captured = captureAfter(before, events, T0 + 2 * S);
    const log = logOf([...before, ...captured]);
    expect(new Set(foldReadModel(model, log).rows.entries.keys()).size).toBe(2);
    const rebuilt = foldReadModel(
      model,
      log.filter((e) => e.revision >= before.length),
    ).rows;
    expect([...rebuilt.entries.values()].map((e) => e.action)).toEqual(['created']);
  });
});
