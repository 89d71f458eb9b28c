import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { userInfo } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../integration/support/waiting.js';
import {
  CLI,
  freePort,
  runCli,
  startNodeProcess,
  tempDir,
  type CliRun,
  type NodeProcess,
} from './support/nodeProcess.js';

/**
 * The read-side commands (`fires`, `audit`, `explain`, `state`, `stats`, `task list` filters, `cluster
 * history`, `replay`) as users run them: the built CLI against one node running as its own OS process,
 * with a task that keeps failing (a webhook on a closed port), one that succeeds (a webhook served
 * here) and a quiet one (hourly, to the same webhook) that is changed, fired by hand, deleted and restored.
 */

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ACTOR = `user:${userInfo().username}`;

let data: ReturnType<typeof tempDir>;
let work: ReturnType<typeof tempDir>;
let node: NodeProcess | undefined;
let url: string;
let hook: Server | undefined;

const kairos = (args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> =>
  runCli(args, { cwd: work.path, env: { KAIROS_URL: url, ...env }, timeoutMs: 30_000 });

/** Expects success: exit 0 and nothing on stderr. */
const ok = async (args: readonly string[], env?: Record<string, string>): Promise<string> => {
  const run = await kairos(args, env);
  expect(run.stderr, `kairos ${args.join(' ')}`).toBe('');
  expect(run.code, `kairos ${args.join(' ')}`).toBe(0);
  return run.stdout;
};

/** Expects failure: exit 1, the error on stderr, nothing on stdout. */
const fails = async (args: readonly string[]): Promise<string> => {
  const run = await kairos(args);
  expect(run.code, `kairos ${args.join(' ')}: ${run.stdout}`).toBe(1);
  expect(run.stdout).toBe('');
  return run.stderr;
};

const okJson = async <T>(args: readonly string[]): Promise<T> => JSON.parse(await ok([...args, '--json'])) as T;

/** A table's data rows (the header dropped), each split into its cells. */
const rowsOf = (table: string): string[][] =>
  table
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((line) => line.split(/\s{2,}/));

type Fire = { taskId: string; status: string; scheduledAt: string; firedAt: string };
const firesOf = async (args: readonly string[]): Promise<Fire[]> =>
  (await okJson<{ fires: Fire[] }>(['fires', ...args])).fires;

/** The ids `kairos task list` prints with these flags. */
const listed = async (args: readonly string[]): Promise<string[]> =>
  rowsOf(await ok(['task', 'list', ...args])).map((r) => r[0]!);

/** Instants recorded along the way: before the update of `report`, and when `healthy` was paused. */
let beforeUpdate: string;
let pausedAt: number;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  data = tempDir('kairos-read-cli-data-');
  work = tempDir('kairos-read-cli-work-');
  hook = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.end('ok'));
  });
  await new Promise<void>((resolve) => hook!.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  // Free now and never listened on: every delivery to it is refused.
  const closedUrl = `http://127.0.0.1:${await freePort()}/hook`;
  node = await startNodeProcess({ dataDir: data.path, port: await freePort(), nodeId: 'read-node' });
  url = node.url;

  await ok(['task', 'add', 'failing', '--every', '1s', '--http', closedUrl, '--max-attempts', '1']);
  await ok(['task', 'add', 'healthy', '--every', '1s', '--http', hookUrl, '--reason', 'canary']);
  await ok(['task', 'add', 'report', '--every', '1h', '--http', hookUrl, '--reason', 'weekly numbers']);
  beforeUpdate = new Date().toISOString();
  await waitUntil(
    async () =>
      (await firesOf(['--task', 'healthy', '--status', 'succeeded'])).length >= 2 &&
      (await firesOf(['--task', 'failing', '--status', 'failed'])).length >= 2,
    'two successes of healthy and two failures of failing',
    20_000,
  );
  await ok(['task', 'pause', 'healthy', '--reason', 'maintenance window']);
  pausedAt = Date.now();
  expect(await ok(['task', 'update', 'report', '--every', '2h', '--reason', 'less often'])).toBe('updated report\n');
});

afterAll(async () => {
  await node?.kill('SIGKILL');
  await new Promise((resolve) => (hook ? hook.close(resolve) : resolve(undefined)));
  data?.remove();
  work?.remove();
});

describe('kairos fires', () => {
  it('--status failed --since 1h lists the failing task’s failed fires and nothing that succeeded', async () => {
    const table = await ok(['fires', '--status', 'failed', '--since', '1h']);
    expect(table.split('\n')[0]).toMatch(
      /^FIREDAT\s+TASK\s+ATTEMPT\s+TRIGGER\s+STATUS\s+LATENESSMS\s+NODE\s+DURATIONMS\s+MESSAGE$/,
    );
    const rows = rowsOf(table);
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const [firedAt, task, attempt, trigger, status, , nodeId] of rows)
      expect({ firedAt, task, attempt, trigger, status, nodeId }).toEqual({
        firedAt: expect.stringMatching(ISO),
        task: 'failing',
        attempt: '1',
        trigger: 'schedule',
        status: 'failed',
        nodeId: 'read-node',
      });
    expect(table).not.toMatch(/succeeded|healthy/);

    const json = await okJson<{ fires: Fire[]; next: string | null }>(['fires', '--status', 'failed', '--since', '1h']);
    expect(json.fires.length).toBeGreaterThanOrEqual(2);
    expect(new Set(json.fires.map((f) => `${f.taskId} ${f.status}`))).toEqual(new Set(['failing failed']));
  });

  it('pages with --limit and the cursor the "more" line names', async () => {
    const [, row, more, ...rest] = (await ok(['fires', '--task', 'healthy', '--limit', '1'])).trimEnd().split('\n');
    expect(rest).toEqual([]);
    const cursor = /^more: --cursor (\S+)$/.exec(more ?? '')?.[1];
    expect(cursor).toBeDefined();
    const [next] = rowsOf(await ok(['fires', '--task', 'healthy', '--limit', '1', '--cursor', cursor!]));
    // Newest first: the next page's fire was fired before the first page's.
    expect(next![0]! < row!.split(/\s{2,}/)[0]!).toBe(true);
  });

  it('a bad filter exits 1 naming the flag that gave it', async () => {
    expect(await fails(['fires', '--status', 'nope'])).toMatch(
      /validation_failed.*\n\s+- --status \(status\[0\]\): must be one or more of in-flight, succeeded, failed/,
    );
    expect(await fails(['fires', '--since', 'yesterday'])).toMatch(/- --since: must be an ISO-8601 time/);
    expect(await fails(['fires', '--min-lateness', 'soon'])).toMatch(/- --min-lateness: expected a duration/);
  });
});

describe('kairos audit', () => {
  it('shows the pause with its actor, node and reason, and the creation with its own', async () => {
    const rows = rowsOf(await ok(['audit', 'healthy']));
    expect(rows.map((r) => r.slice(1, 6))).toEqual([
      ['healthy', 'paused', ACTOR, 'read-node', 'maintenance window'],
      ['healthy', 'created', ACTOR, 'read-node', 'canary'],
    ]);
    expect(rows[1]![6]!.length).toBeLessThanOrEqual(60);
  });

  it('shows what an update changed, compactly; --action filters; reasons of a manual fire, a delete and a restore', async () => {
    expect(rowsOf(await ok(['audit', 'report', '--action', 'updated']))).toEqual([
      [
        expect.stringMatching(ISO),
        'report',
        'updated',
        ACTOR,
        'read-node',
        'less often',
        'schedule.every: 3600000→7200000',
      ],
    ]);
    await ok(['task', 'trigger', 'report', '--reason', 'test run']);
    await ok(['task', 'delete', 'report', '--reason', 'not needed']);
    await ok(['task', 'restore', 'report', '--reason', 'needed after all']);
    const { entries } = await okJson<{ entries: Array<{ action: string; reason: string | null }> }>([
      'audit',
      'report',
      '--action',
      'triggered,deleted,restored',
    ]);
    expect(entries.map((e) => [e.action, e.reason])).toEqual([
      ['restored', 'needed after all'],
      ['deleted', 'not needed'],
      ['triggered', 'test run'],
    ]);
    expect(await fails(['audit', '--action', 'frobbed'])).toMatch(/- --action \(action\[0\]\):/);
  });
});

describe('kairos explain', () => {
  it('a tick that fired: verdict fired, with the events that say so', async () => {
    const [fire] = await firesOf(['--task', 'healthy', '--status', 'succeeded', '--limit', '1']);
    const out = await ok(['explain', 'healthy', '--at', fire!.scheduledAt]);
    expect(out).toMatch(/^verdict: fired\n.*succeeded/);
    expect(out).toContain(`tick: ${fire!.scheduledAt} (asked about ${fire!.scheduledAt})`);
    expect(out).toMatch(/\nevidence:\nPOSITION\s+TYPE\s+ACTOR\n\d+\s+TaskFired\s+node:read-node\n\d+\s+TaskSucceeded/);
  });

  it('a tick while paused: verdict paused, by whom and why', async () => {
    const at = pausedAt + 1_500;
    // The node has scheduled past that instant once the failing task fires after it.
    await waitUntil(
      async () => (await firesOf(['--task', 'failing', '--limit', '1']))[0]!.firedAt > new Date(at).toISOString(),
      'a fire after the instant asked about',
    );
    const out = await ok(['explain', 'healthy', '--at', new Date(at).toISOString()]);
    expect(out).toMatch(/^verdict: paused\n.*by user:\S+ \("maintenance window"\)/);
    expect(out).toMatch(/\n\d+\s+TaskPaused\s+user:/);
    const json = await okJson<{ verdict: string; evidence: unknown[] }>(['explain', 'healthy', '--at', '0s']);
    expect(json.verdict).toBe('paused');
    expect(await fails(['explain', 'healthy'])).toMatch(/required option '--at <time>'/);
  });
});

describe('kairos state', () => {
  it('a task as it was before and after an update: the old and the new schedule', async () => {
    const before = await ok(['state', '--at', beforeUpdate, 'report']);
    expect(before).toMatch(new RegExp(`^report at ${beforeUpdate}: exact`));
    expect(before).toMatch(/\nschedule: +\{"every":3600000\}\n/);
    const now = await ok(['state', '--at', new Date().toISOString(), 'report']);
    expect(now).toMatch(/\nschedule: +\{"every":7200000\}\n/);
    const paused = await ok(['state', '--at', '0s', 'healthy']);
    expect(paused).toMatch(/\nstatus: +paused\n/);
    expect(paused).toMatch(new RegExp(`\\npaused: +at \\S+ by ${ACTOR}: maintenance window\\n`));
    expect(paused).toMatch(/\nlast outcome: +succeeded at /);
    expect(await fails(['state', '--at', '2000-01-01T00:00:00Z', 'report'])).toMatch(
      /not_found: task 'report' did not exist at 2000-01-01T00:00:00.000Z/,
    );
  });

  it('without a task, the board at that time', async () => {
    const out = await ok(['state', '--at', beforeUpdate]);
    expect(out.split('\n')[0]).toBe(`the board at ${beforeUpdate}`);
    const rows = rowsOf(out.split('\n').slice(1).join('\n'));
    expect(rows.map((r) => r[0])).toEqual(['failing', 'healthy', 'report']);
    expect(rows.find((r) => r[0] === 'report')?.[2]).toBe('every 3600000ms');
  });
});

describe('kairos stats', () => {
  it('--step minute: a row per minute with fires, and the total', async () => {
    const out = (await ok(['stats', '--step', 'minute'])).trimEnd().split('\n');
    expect(out[0]).toMatch(/^all tasks, per minute, from \S+ to \S+ \(lateness in ms\)$/);
    expect(out[1]).toMatch(
      /^AT\s+FIRES\s+SUCCEEDED\s+FAILED\s+SKIPPED\s+MISFIRED\s+LATENESSP50\s+LATENESSP99\s+LATENESSMAX$/,
    );
    const total = out.at(-1)!.split(/\s+/);
    expect(total[0]).toBe('total');
    expect(Number(total[1])).toBeGreaterThanOrEqual(4);
    expect(out.slice(2, -1).every((line) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00\.000Z\s+\d+/.test(line))).toBe(true);
    // A task has statistics per hour and day.
    const json = await okJson<{ total: { fires: number; succeeded: number; failed: number } }>([
      'stats',
      '--task',
      'healthy',
      '--step',
      'hour',
      '--from',
      '2h',
    ]);
    expect(json.total.succeeded).toBeGreaterThanOrEqual(2);
    expect(json.total.failed).toBe(0);
    expect(await fails(['stats', '--task', 'healthy', '--step', 'minute'])).toMatch(
      /- --step: a task has statistics per hour and day/,
    );
  });
});

describe('kairos task list filters', () => {
  it('--failing, --status paused, --q', async () => {
    expect(await listed(['--failing'])).toEqual(['failing']);
    expect(await listed(['--status', 'paused'])).toEqual(['healthy']);
    expect(await listed(['--q', 'heal'])).toEqual(['healthy']);
    expect(await listed(['--status', 'active,paused', '--sort', 'name', '--order', 'desc'])).toEqual([
      'report',
      'healthy',
      'failing',
    ]);
    expect(await fails(['task', 'list', '--sort', 'mood'])).toMatch(/- --sort:/);
  });

  it('--limit shows the total and a cursor to the next page', async () => {
    const first = (await ok(['task', 'list', '--limit', '2'])).trimEnd().split('\n');
    expect(first.slice(1, 3).map((l) => l.split(/\s+/)[0])).toEqual(['failing', 'healthy']);
    expect(first[3]).toBe('2 of 3 tasks shown');
    const cursor = /^more: --cursor (\S+)$/.exec(first[4]!)?.[1];
    expect(await listed(['--limit', '2', '--cursor', cursor!])).toEqual(['report']);
  });
});

describe('kairos cluster history', () => {
  it('works on a single node: each task assigned to it', async () => {
    const out = await ok(['cluster', 'history']);
    expect(out.split('\n')[0]).toMatch(/^AT\s+KIND\s+NODE\s+PREVIOUS\s+TASK\s+EPOCH\s+REASON\s+DETAILS$/);
    const { entries } = await okJson<{ entries: Array<{ kind: string; node: string; taskId: string }> }>([
      'cluster',
      'history',
      '--kind',
      'task-assigned',
    ]);
    for (const e of entries) expect(e).toMatchObject({ kind: 'task-assigned', node: 'read-node' });
    expect(await fails(['cluster', 'history', '--kind', 'earthquake'])).toMatch(/- --kind \(kind\[0\]\):/);
  });
});

describe('kairos replay', () => {
  const SUMMARY =
    /^replayed board, fires, audit, cluster, stats: \d+ events up to log position \d+ in \d+\.\d\d s, \d+ events\/s\n$/;

  it('through the running node: rebuilds every model and says how fast', async () => {
    expect(await ok(['replay'])).toMatch(SUMMARY);
    expect(await ok(['replay', '--model', 'fires', '--model', 'audit'])).toMatch(/^replayed fires, audit: /);
    expect(await fails(['replay', '--model', 'nope'])).toMatch(/- --model \(models\[0\]\):/);
  });

  it('--check: the rebuild equals the live models, exit 0', async () => {
    const out = (await ok(['replay', '--check'])).trimEnd().split('\n');
    expect(out[0]).toMatch(/^checked board, fires, audit, cluster, stats: \d+ events/);
    expect(out[1]).toMatch(/^MODEL\s+TABLE\s+ROWS\s+REBUILTROWS\s+ONLYLIVE\s+ONLYREBUILT\s+EXAMPLES$/);
    for (const line of out.slice(2, -1)) expect(line).toMatch(/^\w+\s+\w+\s+(\d+)\s+\1\s+0\s+0\s+-$/);
    expect(out.at(-1)).toMatch(/^ok: a rebuild equals the live models at log position \d+$/);
  });

  it('a named data directory is used directly, even while a node answers: one whose node runs is refused by its lock', async () => {
    const run = await kairos(['replay', '--data-dir', data.path]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/read database .*read\.db is in use by another process/);
  });

  it('with the node down, rebuilds the read database itself', async () => {
    await node?.kill('SIGTERM');
    const run = await kairos(['replay', '--check', '--data-dir', data.path]);
    expect(run.stderr).toBe(`replaying sqlite:${data.path}/kairos.db into ${data.path}/read.db\n`);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/\nok: a rebuild equals the live models at log position \d+\n$/);
    // Point in time and explain read the log itself: nothing needs to run.
    const state = await kairos(['state', '--at', 'now', 'healthy', '--data-dir', data.path]);
    expect(state.code, state.stderr).toBe(0);
    expect(state.stdout).toMatch(/^healthy at .*: exact, folded from its events/);
    expect(state.stdout).toMatch(/\npaused: +at .* by user:\w+: maintenance window\n/);
    const explained = await kairos(['explain', 'healthy', '--at', '1s', '--json', '--data-dir', data.path]);
    expect(explained.code, explained.stderr).toBe(0);
    expect(JSON.parse(explained.stdout)).toMatchObject({ taskId: 'healthy', verdict: 'paused' });
    const rebuilt = await kairos(['replay', '--json'], { KAIROS_DATA_DIR: data.path });
    expect(rebuilt.code).toBe(0);
    expect(JSON.parse(rebuilt.stdout)).toMatchObject({ progress: { phase: 'done' }, comparison: null });
    // That rebuild split the models over two threads; a check rebuilds them in one and compares.
    const checked = await kairos(['replay', '--check'], { KAIROS_DATA_DIR: data.path });
    expect(checked.code, checked.stdout).toBe(0);
    expect(checked.stdout).toMatch(/\nok: a rebuild equals the live models at log position \d+\n$/);
  });
});
