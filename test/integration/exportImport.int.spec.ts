import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide, type Lease, type TaskCommand } from '../../domain/task/decide.js';
import { CLUSTER_STREAM, taskStreamOf, type TaskEvent } from '../../domain/task/events.js';
import { TaskSpec } from '../../domain/task/spec.js';
import { evolve, initialTaskState, type TaskState } from '../../domain/task/state.js';
import { encodeTaskEvent } from '../../src/node/taskCodec.js';
import type { EventStore, RecordedEvent, StreamAppend } from '../../src/store/eventStore.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import { exportLog } from '../../src/store/ndjson/exportLog.js';
import { importLog } from '../../src/store/ndjson/importLog.js';
import { ImportConflictError, LogLineError, type LogLine } from '../../src/store/ndjson/logLine.js';
import { SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';
import { verifyStore } from '../../src/verify/verifyStore.js';
import { rejectionOf } from '../contract/eventStoreFixtures.js';
import { readWholeLog } from './support/wholeLog.js';

/**
 * `kairos export` / `kairos import` without the CLI: a realistic log (tasks created, assigned, fired,
 * succeeded or failed and retried, the cluster stream, events with odd metadata) is exported from
 * SQLite to NDJSON and imported into a fresh SQLite store and into the in-memory store, then compared.
 */

const TASKS = 200;
const TICKS = 24;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const LEASE: Lease = { node: 'node-1', epoch: 3 };

/** What an import must keep of each event (time and position are the target's own). */
const kept = (e: RecordedEvent) => ({
  id: e.id,
  stream: e.stream,
  revision: e.revision,
  type: e.type,
  data: e.data,
  metadata: e.metadata,
});

/** Per stream, in stream order: what must survive the round trip. */
const byStream = (log: readonly RecordedEvent[]) =>
  [...log]
    .sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : Number(a.revision - b.revision)))
    .map(kept);

/**
 * Writes the log round by round, each round one appendBatch across all streams, so the streams
 * interleave in the log as they do under a running node. Task events come from the real decider.
 */
const writeRealisticLog = async (store: EventStore): Promise<void> => {
  const states = new Map<string, TaskState>();
  const run = (taskId: string, command: TaskCommand): TaskEvent[] => {
    const events = decide(command, states.get(taskId) ?? initialTaskState(taskId));
    states.set(taskId, events.reduce(evolve, states.get(taskId) ?? initialTaskState(taskId)));
    return events;
  };
  const ids = Array.from({ length: TASKS }, (_, i) => `job-${String(i).padStart(3, '0')}`);
  const cluster = (type: string, data: Record<string, unknown>): StreamAppend => ({
    stream: CLUSTER_STREAM,
    events: [{ id: randomUUID(), type, data: { v: 1, ...data }, metadata: { actor: 'node:node-1' } }],
  });
  const taskAppends = (command: (id: string) => TaskCommand | undefined, actor: string): StreamAppend[] =>
    ids.flatMap((id) => {
      const c = command(id);
      const events = c === undefined ? [] : run(id, c);
      return events.length === 0
        ? []
        : [
            {
              stream: taskStreamOf(id),
              events: events.map((e) => encodeTaskEvent(e, { actor, correlationId: id }, T0)),
            },
          ];
    });
  const rounds: StreamAppend[][] = [
    [
      cluster('LeaderElected', { node: 'node-1', previous: null, at: new Date(T0).toISOString() }),
      ...['node-1', 'node-2', 'node-3'].map((node) =>
        cluster('NodeJoined', { node, weight: 1, labels: { zone: 'eu-1' }, at: new Date(T0).toISOString() }),
      ),
    ],
    taskAppends(
      (id, i = Number(id.slice(4))) => ({
        type: 'CreateTask',
        now: T0,
        spec: TaskSpec.parse({
          id,
          name: `Nightly “report” ${i} — ü`,
          schedule: { every: '1s' },
          target: { topic: `demo.${i % 7}` },
          payload: { n: i, tags: ['a', 'b'], nested: { ok: true, ratio: i / 7 } },
          retry: { maxAttempts: 2, backoff: { initial: '500ms', jitter: 0 } },
        }),
      }),
      'user:alice',
    ),
  ];
  for (let tick = 1; tick <= TICKS; tick++) {
    const now = T0 + tick * 1_000;
    rounds.push(taskAppends(() => ({ type: 'Advance', now, lease: LEASE }), 'node:node-1'));
    rounds.push(
      taskAppends((id) => {
        const fire = states.get(id)?.inFlight[0];
        if (fire === undefined) return undefined;
        // About one fire in nine fails, and is retried at the next tick.
        const failed = (Number(id.slice(4)) + tick) % 9 === 0 && fire.attempt === 1;
        return {
          type: 'RecordOutcome',
          outcome: {
            fireId: fire.fireId,
            attempt: fire.attempt,
            status: failed ? 'failed' : 'succeeded',
            at: now + 20,
            ...(failed ? { message: 'HTTP 503 from billing' } : {}),
          },
        };
      }, 'node:node-1'),
    );
    if (tick === 12) rounds.push([cluster('NodeLeft', { node: 'node-2', at: new Date(now).toISOString() })]);
  }
  // Metadata none, null and odd data must survive as they were.
  rounds.push([
    {
      stream: 'kairos-odd',
      events: [
        { id: randomUUID(), type: 'NoMetadata', data: { emoji: '⏰', nul: 'a\u0000b' } },
        { id: randomUUID(), type: 'NullMetadata', data: null, metadata: null },
        { id: randomUUID(), type: 'Scalar', data: 42, metadata: 'text' },
        { id: randomUUID().toUpperCase(), type: 'UpperCaseId', data: [1, [2, [3]]] },
      ],
    },
  ]);
  for (const round of rounds) {
    for (const result of await store.appendBatch(round)) if (!result.ok) throw result.error;
  }
};

describe('export and import', () => {
  let dir: string;
  let source: SqliteEventStore;
  let file: string;
  let sourceLog: RecordedEvent[];
  const opened: EventStore[] = [];
  const sqlite = (name: string): SqliteEventStore => {
    const store = SqliteEventStore.open(join(dir, name));
    opened.push(store);
    return store;
  };
  const fileLines = (): LogLine[] =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as LogLine);
  const writeLines = (name: string, lines: readonly unknown[]): string => {
    const path = join(dir, name);
    writeFileSync(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
    return path;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kairos-export-'));
    source = sqlite('source.db');
    await writeRealisticLog(source);
    sourceLog = await readWholeLog(source);
    file = join(dir, 'log.ndjson');
    const out = createWriteStream(file);
    await exportLog(source, out);
    out.end();
    await finished(out);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('exports every event, in log order, one JSON object a line', () => {
    expect(sourceLog.length).toBeGreaterThanOrEqual(10_000);
    const lines = fileLines();
    expect(lines).toHaveLength(sourceLog.length);
    expect(lines.map((l) => l.position)).toEqual(sourceLog.map((e) => Number(e.position)));
    const fired = lines.find((l) => l.type === 'TaskFired') as LogLine;
    expect(Object.keys(fired).sort()).toEqual([
      'data',
      'id',
      'metadata',
      'position',
      'revision',
      'stream',
      'time',
      'type',
    ]);
    expect(new Date(fired.time).toISOString()).toBe(fired.time);
    expect(new Set(lines.map((l) => l.type))).toEqual(
      new Set([
        'LeaderElected',
        'NodeJoined',
        'NodeLeft',
        'TaskCreated',
        'TaskAssigned',
        'TaskFired',
        'TaskSucceeded',
        'TaskFailed',
        'TaskSkipped',
        'NoMetadata',
        'NullMetadata',
        'Scalar',
        'UpperCaseId',
      ]),
    );
  });

  it('round-trips into a fresh SQLite store: same ids, streams, revisions, types, data and metadata', async () => {
    const target = sqlite('target.db');
    const result = await importLog(target, file);
    expect(result).toEqual({
      events: sourceLog.length,
      streams: TASKS + 2,
      written: sourceLog.length,
      skipped: 0,
      dropped: 0,
    });
    const targetLog = await readWholeLog(target);
    expect(byStream(targetLog)).toEqual(byStream(sourceLog));
    // The log still passes the invariants, with the same counts.
    const [before, after] = await Promise.all([verifyStore(source), verifyStore(target)]);
    expect(after.ok).toBe(true);
    expect({ ...after, position: 0 }).toEqual({ ...before, position: 0 });

    // Importing the same file again changes nothing.
    const head = await target.headPosition();
    const again = await importLog(target, file);
    expect(again).toMatchObject({ written: 0, skipped: sourceLog.length });
    expect(await target.headPosition()).toBe(head);
  });

  it('round-trips into the in-memory store', async () => {
    const target = new InMemoryEventStore();
    opened.push(target);
    await importLog(target, file, { chunkSize: 3_000, eventsPerCall: 700, concurrency: 2 });
    expect(byStream(await readWholeLog(target))).toEqual(byStream(sourceLog));
  });

  it('completes a partly imported store, whatever the batches were, without writing an event twice', async () => {
    const target = sqlite('partial.db');
    const lines = fileLines();
    await importLog(target, writeLines('first-third.ndjson', lines.slice(0, Math.floor(lines.length / 3))), {
      chunkSize: 777,
    });
    const result = await importLog(target, file, { chunkSize: 5_000 });
    expect(result.written + result.skipped).toBe(lines.length);
    expect(result.skipped).toBe(Math.floor(lines.length / 3));
    expect(byStream(await readWholeLog(target))).toEqual(byStream(sourceLog));
  });

  it('stops at an event that differs from the one stored at its revision, naming the stream and revision', async () => {
    const target = sqlite('conflict.db');
    const lines = fileLines();
    const stream = taskStreamOf('job-042');
    const own = lines.filter((l) => l.stream === stream);
    // The target already has this stream up to revision 5, with another event at revision 3.
    const diverged = own.slice(0, 6).map((l) => (l.revision === 3 ? { ...l, id: randomUUID() } : l));
    await importLog(target, writeLines('diverged.ndjson', diverged));

    const error = await rejectionOf(importLog(target, file));
    expect(error).toBeInstanceOf(ImportConflictError);
    expect((error as ImportConflictError).message).toContain(`stream '${stream}'`);
    expect((error as ImportConflictError).message).toContain('revision 3');
    expect(error).toMatchObject({ stream, revision: 3, code: 'already_exists' });
    // Nothing after the conflict was written to that stream.
    expect((await target.readStream(stream)).map((e) => e.id)).toEqual(diverged.map((l) => l.id));
  });

  it('refuses a malformed line before writing anything, naming the line and the field', async () => {
    const target = sqlite('malformed.db');
    const lines: unknown[] = fileLines().slice(0, 50);
    // Line 4 is the fourth event of kairos-cluster (revision 3), after three of the same stream.
    const good = lines[3] as LogLine;
    expect(good).toMatchObject({ stream: CLUSTER_STREAM, revision: 3 });
    const cases: Array<[unknown, RegExp]> = [
      [{ ...good, revision: 'x' }, /^line 4: revision: /],
      [{ ...good, id: 'not-a-uuid' }, /^line 4: id: must be a UUID/],
      [{ ...good, data: undefined }, /^line 4: data: is required/],
      [{ ...good, stream: '$all' }, /^line 4: stream: must not start with '\$'/],
      ['{"id": "truncated', /^line 4: is not JSON/],
      ['[1, 2]', /^line 4: must be a JSON object/],
      [
        { ...good, revision: 4 },
        /^line 4: revision: must be 3: the previous event of stream 'kairos-cluster' \(line 3\)/,
      ],
    ];
    for (const [bad, message] of cases) {
      const path = writeLines('bad.ndjson', [...lines.slice(0, 3), bad, ...lines.slice(4)]);
      const error = await rejectionOf(importLog(target, path));
      expect(error).toBeInstanceOf(LogLineError);
      expect((error as LogLineError).line).toBe(4);
      expect((error as LogLineError).issues[0]?.path).toMatch(/^line 4/);
      expect((error as LogLineError).message).toMatch(message);
    }
    expect(await target.headPosition()).toBe(0n);
  });
});
