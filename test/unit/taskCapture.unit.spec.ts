import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { NotFoundError } from '../../domain/errors/index.js';
import { capturesState, captureOf, emptyTaskHistory, foldTaskHistory } from '../../domain/task/capture.js';
import { decide, type TaskCommand } from '../../domain/task/decide.js';
import { TaskEvent, type EventMetadata } from '../../domain/task/events.js';
import { fireIdOf } from '../../domain/task/fireId.js';
import { lifecycleOf, taskMachine } from '../../domain/task/machine.js';
import { foldTask, type TaskState } from '../../domain/task/state.js';
import { LEASE, T0, advance, created, given, iso, spec } from './support/taskFixtures.js';

const S = 1_000;
const user: EventMetadata = { actor: 'user:alice', correlationId: 'CHG-1' };
const node = (id: string): EventMetadata => ({ actor: `node:${id}` });

/**
 * A life with every kind of event and state: fires and outcomes, a retry waiting, a manual fire, a
 * skip, a misfire after a gap, a pause, an update, an owner change, a release, a delete and a restore.
 * Each event comes with the metadata a node would have stored.
 */
const life = (): Array<{ event: TaskEvent; metadata: EventMetadata }> => {
  const s = spec({ retry: { maxAttempts: 3, backoff: { initial: '2s', jitter: 0 } }, timeout: '30s' });
  const log: Array<{ event: TaskEvent; metadata: EventMetadata }> = [{ event: created(s), metadata: user }];
  const step = (command: TaskCommand, metadata: EventMetadata = node('n1')) => {
    const state = foldTask(
      't1',
      log.map((l) => l.event),
    );
    for (const event of decide(command, state)) log.push({ event, metadata });
  };
  const answer = (tick: number, attempt: number, status: 'succeeded' | 'failed', at: number) =>
    step({ type: 'RecordOutcome', outcome: { fireId: fireIdOf('t1', tick), attempt, status, at, message: 'no' } });
  step(advance(T0 + S));
  answer(T0 + S, 1, 'failed', T0 + S + 10); // a retry follows at +2 s
  step(advance(T0 + 2 * S)); // skipped: the first fire still waits for its retry
  step({ type: 'TriggerTask', now: T0 + 2_500, lease: LEASE }, user);
  step(advance(T0 + 3 * S + 20)); // the retry, and tick 3
  answer(T0 + S, 2, 'succeeded', T0 + 3 * S + 40);
  step({ type: 'PauseTask', now: T0 + 4 * S, reason: 'maintenance' }, user);
  step({ type: 'UpdateTask', spec: spec({ ...s, schedule: { every: '2s' } }), now: T0 + 5 * S }, user);
  step({ type: 'ResumeTask', now: T0 + 6 * S }, user);
  step(advance(T0 + 20 * S, { node: 'n2', epoch: 9, reason: 'node-lost' }), node('n2')); // a gap: misfired
  step({ type: 'ReleaseTask', now: T0 + 21 * S, lease: { node: 'n2', epoch: 9 }, reason: 'shutdown' }, node('n2'));
  step({ type: 'DeleteTask', now: T0 + 22 * S, reason: 'moved' }, user);
  step({ type: 'RestoreTask', now: T0 + 23 * S }, user);
  step(advance(T0 + 26 * S, { node: 'n3', epoch: 11 }), node('n3'));
  return log;
};

const capture = (events: TaskEvent[], at: number): TaskEvent => {
  const history = emptyTaskHistory();
  return decide({ type: 'CaptureState', now: at, history }, foldTask('t1', events))[0] as TaskEvent;
};

describe('TaskStateCaptured', () => {
  it('replaying [capture + later events] folds to the same state as the whole stream, captured anywhere', () => {
    const events = life().map((l) => l.event);
    const whole = foldTask('t1', events);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['TaskSkipped', 'TaskMisfired', 'TaskReleased', 'TaskRestored', 'TaskReassigned']),
    );
    for (let k = 1; k <= events.length; k++) {
      const snapshot = capture(events.slice(0, k), T0 + 30 * S);
      // As stored and read back: the event goes through JSON and the schema, as every event does.
      const stored = TaskEvent.parse(JSON.parse(JSON.stringify(snapshot)));
      expect(foldTask('t1', [stored, ...events.slice(k)])).toEqual(whole);
      // Events before the capture (a stream read from a truncation point) change nothing.
      expect(foldTask('t1', [...events.slice(Math.max(0, k - 3), k), stored, ...events.slice(k)])).toEqual(whole);
    }
  });

  it('records instants as ISO text, in-flight attempts included', () => {
    const all = life().map((l) => l.event);
    const manual = all.findIndex((e) => e.type === 'TaskFired' && e.data.trigger === 'manual');
    const state = foldTask('t1', all.slice(0, manual + 1));
    expect(state.inFlight).toHaveLength(2);
    const captured = captureOf(state);
    expect(captured.cursor).toBe(iso(state.cursor));
    expect(captured.inFlight).toEqual([
      expect.objectContaining({ fireId: fireIdOf('t1', T0 + S), deadline: null, retryAt: iso(T0 + S + 10 + 2 * S) }),
      expect.objectContaining({ trigger: 'manual', retryAt: null }),
    ]);
    expect(capturesState(captured, state)).toBe(true);
    expect(capturesState(captured, { ...state, runs: state.runs + 1 } as TaskState)).toBe(false);
  });

  it('is decided for an existing task only, with the history it is given', () => {
    const history = emptyTaskHistory();
    given([]).when({ type: 'CaptureState', now: T0, history }).thenThrows(NotFoundError);
    given([created()])
      .when({ type: 'CaptureState', now: T0 + S, history })
      .then([
        {
          type: 'TaskStateCaptured',
          data: { taskId: 't1', at: iso(T0 + S), state: { status: 'active', cursor: iso(T0) }, history },
        },
      ]);
  });

  it('drives the statechart to the lifecycle state it records, from any state', () => {
    const events = life().map((l) => l.event);
    const paused = events.findIndex((e) => e.type === 'TaskPaused') + 1;
    const deleted = events.findIndex((e) => e.type === 'TaskDeleted') + 1;
    for (const k of [1, 2, paused, deleted, events.length]) {
      const snapshot = capture(events.slice(0, k), T0);
      const actor = createActor(taskMachine, { input: { taskId: 't1' } }).start();
      for (const e of events.slice(0, 3)) actor.send(e);
      actor.send(snapshot);
      const expected = foldTask('t1', events.slice(0, k));
      expect(actor.getSnapshot().context).toEqual(expected);
      expect(actor.getSnapshot().value).toEqual(lifecycleOf(expected));
      actor.stop();
    }
  });
});

describe('the history a capture carries', () => {
  it('lists every definition and ownership change, with who made it, and nothing of execution', () => {
    const log = life();
    const history = emptyTaskHistory();
    log.forEach(({ event, metadata }, revision) => foldTaskHistory(history, event, revision, metadata));
    expect(history.definitions.map((d) => [d.type, d.actor])).toEqual([
      ['TaskCreated', 'user:alice'],
      ['TaskPaused', 'user:alice'],
      ['TaskUpdated', 'user:alice'],
      ['TaskResumed', 'user:alice'],
      ['TaskDeleted', 'user:alice'],
      ['TaskRestored', 'user:alice'],
    ]);
    expect(history.definitions[0]).toMatchObject({ revision: 0, correlationId: 'CHG-1', spec: { id: 't1' } });
    expect(history.definitions[1]).toMatchObject({ reason: 'maintenance' });
    expect(history.definitions[2]?.spec?.schedule).toEqual({ every: 2_000 });
    expect(history.ownership.map((o) => [o.type, o.node, o.epoch, o.reason])).toEqual([
      ['TaskAssigned', 'n1', 7, 'start'],
      ['TaskReassigned', 'n2', 9, 'node-lost'],
      ['TaskReleased', 'n2', 9, 'shutdown'],
      ['TaskReassigned', 'n3', 11, 'drain'],
    ]);
    expect(history.ownership[1]).toMatchObject({ previousNode: 'n1', previousEpoch: 7, actor: 'node:n2' });
    for (const o of history.ownership) expect(log[o.revision]?.event.type).toBe(o.type);
  });

  it('folds on from a capture: its history, then what came after', () => {
    const log = life();
    const half = Math.floor(log.length / 2);
    const before = emptyTaskHistory();
    log.slice(0, half).forEach(({ event, metadata }, i) => foldTaskHistory(before, event, i, metadata));
    const snapshot = decide(
      { type: 'CaptureState', now: T0, history: before },
      foldTask(
        't1',
        log.slice(0, half).map((l) => l.event),
      ),
    )[0] as TaskEvent;
    const resumed = foldTaskHistory(emptyTaskHistory(), snapshot, half, node('n1'));
    log.slice(half).forEach(({ event, metadata }, i) => foldTaskHistory(resumed, event, half + 1 + i, metadata));
    const whole = emptyTaskHistory();
    log.forEach(({ event, metadata }, i) => foldTaskHistory(whole, event, i, metadata));
    const withoutRevisions = (h: typeof whole) => ({
      definitions: h.definitions.map(({ revision: _r, ...d }) => d),
      ownership: h.ownership.map(({ revision: _r, ...o }) => o),
    });
    expect(withoutRevisions(resumed)).toEqual(withoutRevisions(whole));
  });
});
