import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, expect, it } from 'vitest';
import { EsdbEventStore } from '../../src/store/esdb/esdbEventStore.js';
import type { RecordedEvent } from '../../src/store/eventStore.js';
import { exportLog } from '../../src/store/ndjson/exportLog.js';
import { importLog } from '../../src/store/ndjson/importLog.js';
import { SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';
import { startEsdbStandIn } from '../support/esdbStandIn/index.js';

const STREAMS = 1_000;
const PER_STREAM = 100;
const dir = mkdtempSync(join(tmpdir(), 'kairos-esdb-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const identity = (e: RecordedEvent) => `${e.stream}@${e.revision} ${e.id} ${e.type}`;

/** Issue 4's acceptance: `kairos export` from SQLite, then `kairos import` into EventStoreDB (the stand-in). */
it('round-trips 100,000 events from SQLite into EventStoreDB with identical ids, streams and revisions', async () => {
  const source = SqliteEventStore.open(join(dir, 'source.db'));
  for (let s = 0; s < STREAMS; s += 100) {
    await source.appendBatch(
      Array.from({ length: 100 }, (_, i) => ({
        stream: `kairos-task-t${s + i}`,
        events: Array.from({ length: PER_STREAM }, (_, n) => ({
          id: randomUUID(),
          type: n === 0 ? 'TaskCreated' : 'TaskFired',
          data: { n, task: `t${s + i}` },
          metadata: { actor: 'node:n1' },
        })),
      })),
    );
  }
  const file = join(dir, 'log.ndjson');
  const out = createWriteStream(file);
  const exported = await exportLog(source, out);
  out.end();
  await finished(out);
  expect(exported.events).toBe(STREAMS * PER_STREAM);

  const standIn = await startEsdbStandIn();
  const target = EsdbEventStore.open(standIn.url);
  try {
    const imported = await importLog(target, file);
    expect(imported).toMatchObject({ events: STREAMS * PER_STREAM, streams: STREAMS, written: STREAMS * PER_STREAM });
    const [from, to] = [await source.readAll(), await target.readAll()];
    expect(to.length).toBe(from.length);
    // Each stream in order, with the same ids at the same revisions (the order between streams is the target's).
    expect(to.map(identity).sort()).toEqual(from.map(identity).sort());
    expect((await importLog(target, file)).written).toBe(0);
  } finally {
    await target.close();
    await standIn.stop();
    await source.close();
  }
}, 240_000);
