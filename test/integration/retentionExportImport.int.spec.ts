import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskStreamOf } from '../../domain/task/events.js';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import { EsdbEventStore } from '../../src/store/esdb/esdbEventStore.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import { exportLog } from '../../src/store/ndjson/exportLog.js';
import { importLog } from '../../src/store/ndjson/importLog.js';
import { LogLineError, type LogLine } from '../../src/store/ndjson/logLine.js';
import { SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';
import { verifyStore } from '../../src/verify/verifyStore.js';
import { rejectionOf } from '../contract/eventStoreFixtures.js';
import { startEsdbStandIn } from '../support/esdbStandIn/index.js';
import { run, specOf, startNode } from '../unit/support/nodeHarness.js';
import { readWholeLog } from './support/wholeLog.js';

/**
 * Export and import of a log whose task streams retention truncated: the file holds each stream from
 * where its reads start, at its real revisions, and an import restores it there (SQLite natively,
 * EventStoreDB with placeholders it hides), so the target has the same revisions and a node goes on
 * from it. A stream that jumps ahead in a file (truncated during the export) is imported from the jump.
 */
const T0 = Date.UTC(2026, 4, 1, 8, 0, 0);
const S = 1_000;
const actor = { actor: 'user:ops' };

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Every stream as its reads show it: what an export must carry and an import restore. */
const readable = async (store: EventStore, streams: readonly string[]) => {
  const out: Record<string, { last: bigint | undefined; events: string[] }> = {};
  for (const stream of streams) {
    out[stream] = {
      last: await store.streamRevision(stream),
      events: (await store.readStream(stream)).map(
        (e) => `${e.revision} ${e.id} ${e.type} ${JSON.stringify(e.data)} ${JSON.stringify(e.metadata)}`,
      ),
    };
  }
  return out;
};

describe('export and import of truncated streams', () => {
  let dir: string;
  let clock: SimulatedClock;
  let source: SqliteEventStore;
  let streams: string[];
  const opened: EventStore[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  const exportTo = async (store: EventStore, name: string): Promise<string> => {
    const file = join(dir, name);
    const out = createWriteStream(file);
    await exportLog(store, out);
    out.end();
    await finished(out);
    return file;
  };
  const linesOf = (file: string): LogLine[] =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as LogLine);
  const sqlite = (name: string): SqliteEventStore => {
    // Inline writes: the simulated clock's steps let a group commit finish, not a writer thread's.
    const store = SqliteEventStore.open(join(dir, name), { now: () => clock.now(), writer: 'inline' });
    opened.push(store);
    return store;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kairos-retention-export-'));
    clock = new SimulatedClock(T0);
    source = sqlite('source.db');
    const { node } = await startNode({
      store: source,
      clock,
      autoSucceed: true,
      retention: { maxFires: 3, checkEvery: 6 },
    });
    for (const id of ['a', 'b', 'c']) await node.createTask(specOf({ id, overlap: 'allow' }), actor);
    await node.createTask(specOf({ id: 'whole', schedule: { every: '5s' }, retention: {} }), actor);
    await run(clock, 30 * S);
    await node.stop();
    streams = ['a', 'b', 'c', 'whole'].map(taskStreamOf);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
    for (const cleanup of cleanups) await cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exports each stream from where its reads start, at its revisions', async () => {
    const file = await exportTo(source, 'log.ndjson');
    const lines = linesOf(file);
    const ofA = lines.filter((l) => l.stream === taskStreamOf('a'));
    expect(ofA[0]?.revision).toBeGreaterThan(0);
    expect(ofA.map((l) => l.revision)).toEqual(ofA.map((_, i) => (ofA[0]?.revision as number) + i));
    expect(ofA.some((l) => l.type === 'TaskStateCaptured')).toBe(true);
    expect(lines.filter((l) => l.stream === taskStreamOf('whole'))[0]?.revision).toBe(0);
    expect(lines).toHaveLength((await readWholeLog(source)).length);
  });

  it('imports into SQLite at the same revisions; a node goes on from it; a repeat changes nothing', async () => {
    const file = await exportTo(source, 'to-sqlite.ndjson');
    const target = sqlite('target.db');
    const result = await importLog(target, file);
    expect(result).toMatchObject({ written: result.events, skipped: 0, dropped: 0 });
    expect(await readable(target, streams)).toEqual(await readable(source, streams));
    expect((await verifyStore(target)).violations).toEqual([]);
    expect(await importLog(target, file)).toMatchObject({ written: 0, skipped: result.events });

    const before = await target.streamRevision(taskStreamOf('a'));
    const { node } = await startNode({
      store: target,
      clock,
      autoSucceed: true,
      retention: { maxFires: 3, checkEvery: 6 },
    });
    expect(node.get('a')?.state).toMatchObject({ status: 'active', runs: 30 });
    await run(clock, 5 * S);
    await node.stop();
    expect((await target.streamRevision(taskStreamOf('a'))) as bigint).toBeGreaterThan(before as bigint);
    expect((await verifyStore(target)).violations).toEqual([]);
  });

  it('imports into EventStoreDB at the same revisions, and exports from it the same file again', async () => {
    const standIn = await startEsdbStandIn();
    const target = EsdbEventStore.open(standIn.url);
    cleanups.push(async () => {
      await target.close();
      await standIn.stop();
    });
    const file = await exportTo(source, 'to-esdb.ndjson');
    const result = await importLog(target, file);
    expect(result).toMatchObject({ written: result.events, dropped: 0 });
    expect(await readable(target, streams)).toEqual(await readable(source, streams));
    expect((await verifyStore(target)).violations).toEqual([]);
    expect((await importLog(target, file)).written).toBe(0);
    // $all holds the placeholders below each start (until a scavenge); no read hands them out.
    const again = linesOf(await exportTo(target, 'from-esdb.ndjson'));
    const identity = (l: LogLine) => `${l.stream}@${l.revision} ${l.id}`;
    expect(again.map(identity).sort()).toEqual(linesOf(file).map(identity).sort());
  });

  it('completes a stream truncated while the export runs, up to the capture written after its head', async () => {
    for (const cut of [10n, 5n]) {
      const store = new InMemoryEventStore();
      const stream = taskStreamOf('cut');
      await store.appendToStream(
        stream,
        Array.from({ length: 10 }, (_, i) => ({ id: randomUUID(), type: 'TaskFired', data: { n: i } })),
      );
      // Retention runs right after the export read the head: its capture lies past it, its cut before it.
      const racing: EventStore = Object.assign(Object.create(store) as EventStore, {
        headPosition: async () => {
          const head = await store.headPosition();
          racing.headPosition = () => store.headPosition();
          await store.appendToStream(stream, [{ id: randomUUID(), type: 'TaskStateCaptured', data: {} }], {
            expectedRevision: 9n,
          });
          await store.truncateBefore(stream, cut);
          return head;
        },
      });
      const file = await exportTo(racing, `racing-${cut}.ndjson`);
      expect(linesOf(file).map((l) => l.revision)).toEqual(range(Number(cut), 11));
      const target = new InMemoryEventStore();
      await importLog(target, file);
      expect((await target.readStream(stream)).map((e) => e.revision)).toEqual(range(Number(cut), 11).map(BigInt));
    }
  });

  it('imports again harmlessly after retention truncated the target since the first import', async () => {
    const origin = new InMemoryEventStore();
    const stream = taskStreamOf('again');
    await origin.appendToStream(
      stream,
      Array.from({ length: 10 }, (_, i) => ({ id: randomUUID(), type: 'TaskFired', data: { n: i } })),
    );
    const file = await exportTo(origin, 'again.ndjson');
    const target = new InMemoryEventStore();
    expect(await importLog(target, file)).toMatchObject({ written: 10 });
    await target.truncateBefore(stream, 6n);
    expect(await importLog(target, file)).toMatchObject({ written: 0 });
    expect((await target.readStream(stream)).map((e) => e.revision)).toEqual(range(6, 10).map(BigInt));
  });

  it('imports a stream that jumps ahead (truncated during the export) from the jump', async () => {
    const older = linesOf(await exportTo(source, 'older.ndjson'));
    const { node } = await startNode({
      store: source,
      clock,
      autoSucceed: true,
      retention: { maxFires: 3, checkEvery: 6 },
    });
    await run(clock, 10 * S);
    await node.stop();
    const newer = linesOf(await exportTo(source, 'newer.ndjson'));
    const a = taskStreamOf('a');
    const olderA = older.filter((l) => l.stream === a);
    const newerA = newer.filter((l) => l.stream === a);
    expect(newerA[0]?.revision).toBeGreaterThan((olderA.at(-1)?.revision as number) + 1);
    const jumping = join(dir, 'jumping.ndjson');
    writeFileSync(jumping, [...olderA, ...newer].map((l) => JSON.stringify(l)).join('\n') + '\n');

    const target = sqlite('jumped.db');
    const result = await importLog(target, jumping);
    expect(result).toMatchObject({ dropped: olderA.length, written: newer.length });
    expect(await readable(target, streams)).toEqual(await readable(source, streams));

    // Without a capture after it, a jump is a gap in the file: refused, naming the line, nothing written.
    const gap = join(dir, 'gap.ndjson');
    const broken = newer.map((l) =>
      l.stream === a && l.type === 'TaskStateCaptured' ? { ...l, type: 'SomethingElse' } : l,
    );
    writeFileSync(gap, [...olderA, ...broken].map((l) => JSON.stringify(l)).join('\n') + '\n');
    const empty = sqlite('refused.db');
    const error = await rejectionOf(importLog(empty, gap));
    expect(error).toBeInstanceOf(LogLineError);
    const jumpLine = olderA.length + 1 + broken.findIndex((l) => l.stream === a);
    expect((error as LogLineError).line).toBe(jumpLine);
    expect((error as LogLineError).issues[0]?.path).toBe(`line ${jumpLine}: revision`);
    expect(await empty.headPosition()).toBe(0n);
  });
});
