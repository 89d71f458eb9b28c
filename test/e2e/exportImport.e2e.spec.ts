import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../src/store/sqlite/sqliteEventStore.js';
import { runCli, tempDir, type CliRun } from './support/nodeProcess.js';

/**
 * `kairos export` and `kairos import` as users run them: the built CLI as an OS process, SQLite to
 * NDJSON to another SQLite file. stderr is a pipe here, so no progress bar may appear on it.
 */

const EVENTS = 1_200;
const STREAMS = 30;

let work: ReturnType<typeof tempDir>;
let source: string;

const kairos = (args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> =>
  runCli(args, { cwd: work.path, env, timeoutMs: 60_000 });

const ok = async (args: readonly string[], env?: Record<string, string>): Promise<string> => {
  const run = await kairos(args, env);
  expect(run.stderr, `kairos ${args.join(' ')}`).toBe('');
  expect(run.code, `kairos ${args.join(' ')}`).toBe(0);
  return run.stdout;
};

const ndjson = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { id: string; stream: string; revision: number; position: number });

describe('kairos export / import (built CLI)', () => {
  beforeAll(async () => {
    work = tempDir('kairos-export-e2e-');
    source = join(work.path, 'source', 'kairos.db');
    const store = SqliteEventStore.open(source);
    for (let i = 0; i < EVENTS / STREAMS; i++) {
      const results = await store.appendBatch(
        Array.from({ length: STREAMS }, (_, s) => ({
          stream: `kairos-task-e2e-${s}`,
          events: [{ id: randomUUID(), type: 'TaskFired', data: { tick: i }, metadata: { actor: 'node:e2e' } }],
        })),
      );
      for (const r of results) if (!r.ok) throw r.error;
    }
    await store.close();
  });

  afterAll(() => work.remove());

  it('exports to a file and to stdout, and imports twice with the second import writing nothing', async () => {
    const file = join(work.path, 'log.ndjson');
    const exported = await ok(['export', '--store', `sqlite:${source}`, '--out', file]);
    expect(exported).toMatch(new RegExp(`^exported ${EVENTS} events \\(the log up to position ${EVENTS}\\)`));
    expect(existsSync(`${file}.partial`)).toBe(false);
    const lines = ndjson(readFileSync(file, 'utf8'));
    expect(lines).toHaveLength(EVENTS);
    expect(lines.map((l) => l.position)).toEqual(Array.from({ length: EVENTS }, (_, i) => i + 1));

    // KAIROS_STORE is the default store; `--out -` writes the same lines to stdout, the summary to stderr.
    const piped = await kairos(['export', '--out', '-'], { KAIROS_STORE: `sqlite:${source}` });
    expect(piped.code).toBe(0);
    expect(piped.stdout).toBe(readFileSync(file, 'utf8'));
    expect(piped.stderr).toMatch(/^exported 1200 events .* to stdout/);
    expect((await kairos(['export', '--out', '-', '--quiet'], { KAIROS_STORE: `sqlite:${source}` })).stderr).toBe('');

    const target = `sqlite:${join(work.path, 'target', 'kairos.db')}`;
    expect(await ok(['import', '--store', target, '--in', file])).toMatch(
      new RegExp(`^imported ${EVENTS} events of ${STREAMS} streams .*: ${EVENTS} written, 0 already there`),
    );
    expect(await ok(['import', '--store', target, '--in', file])).toMatch(
      new RegExp(`: 0 written, ${EVENTS} already there`),
    );
    const reexported = ndjson(await ok(['export', '--store', target, '--out', '-', '--quiet']));
    const key = (l: { id: string; stream: string; revision: number }) => `${l.stream}@${l.revision}=${l.id}`;
    expect(reexported.map(key).sort()).toEqual(lines.map(key).sort());
  });

  it('names the line and the field of a bad line, and the store that is missing', async () => {
    const file = join(work.path, 'bad.ndjson');
    const good = readFileSync(join(work.path, 'log.ndjson'), 'utf8').split('\n');
    writeFileSync(file, [good[0], good[1]?.replace(/"revision":\d+/, '"revision":-1'), ...good.slice(2)].join('\n'));
    const target = `sqlite:${join(work.path, 'bad-target', 'kairos.db')}`;
    const bad = await kairos(['import', '--store', target, '--in', file]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/error: validation_failed/);
    expect(bad.stderr).toMatch(/line 2: revision: must be >= 0/);

    const missing = await kairos(['export', '--store', `sqlite:${join(work.path, 'nope.db')}`, '--out', '-']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/there is no event store at .*nope\.db/);
    expect(existsSync(join(work.path, 'nope.db'))).toBe(false);

    const noFile = await kairos(['import', '--store', target, '--in', join(work.path, 'absent.ndjson')]);
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toMatch(/--in: there is no file .*absent\.ndjson/);

    expect((await kairos(['export', '--help'])).stdout).toMatch(/not time and position/);
    expect((await kairos(['import', '--help'])).stdout).toMatch(/Recorded times and positions are not kept/);
  });
});
