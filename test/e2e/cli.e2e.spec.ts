import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI,
  freePort,
  readLog,
  startNodeProcess,
  tempDir,
  type LogEvent,
  type CliRun,
  type NodeProcess,
  runCli,
} from './support/nodeProcess.js';

/**
 * The built `kairos` command as users run it (`npm run build` first), against a node running as its
 * own OS process: exit code 0 and output on stdout on success, 1 and the error on stderr otherwise.
 */

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let data: ReturnType<typeof tempDir>;
let work: ReturnType<typeof tempDir>;
let node: NodeProcess | undefined;
let url: string;

/** Runs `kairos ...args` with only the KAIROS_* variables given here. */
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
const fails = async (args: readonly string[], env?: Record<string, string>): Promise<string> => {
  const run = await kairos(args, env);
  expect(run.code, `kairos ${args.join(' ')}: ${run.stdout}`).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(/error/);
  return run.stderr;
};

type TaskJson = {
  id: string;
  status: string;
  revision: number;
  spec: {
    schedule: Record<string, unknown>;
    target: Record<string, unknown>;
    payload: unknown;
    retry: { maxAttempts: number };
    timeout: number;
    name?: string;
  };
};
const getTask = async (id: string): Promise<TaskJson> => JSON.parse(await ok(['task', 'get', id])) as TaskJson;
const listIds = async (): Promise<string[]> =>
  (JSON.parse(await ok(['task', 'list', '--json'])) as { tasks: TaskJson[] }).tasks.map((t) => t.id);

const writeFile = (name: string, text: string): string => {
  const path = join(work.path, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  data = tempDir('kairos-cli-data-');
  work = tempDir('kairos-cli-work-');
  node = await startNodeProcess({ dataDir: data.path, port: await freePort(), nodeId: 'cli-node' });
  url = node.url;
});

afterAll(async () => {
  await node?.kill('SIGKILL');
  data?.remove();
  work?.remove();
});

describe('kairos task', () => {
  it('task add builds a task from flags', async () => {
    const out = await ok([
      'task',
      'add',
      'report',
      '--every',
      '1h',
      '--topic',
      'reports',
      '--name',
      'Daily report',
      '--payload',
      '{"format":"pdf"}',
    ]);
    expect(out).toMatch(/^created report \(every 3600000ms\), next fire \d{4}-\d{2}-\d{2}T/);
    const task = await getTask('report');
    expect(task).toMatchObject({
      id: 'report',
      status: 'active',
      spec: {
        name: 'Daily report',
        schedule: { every: 3_600_000 },
        target: { topic: 'reports' },
        payload: { format: 'pdf' },
      },
    });
  });

  it('task add --json prints the created task; cron, time zone, http target and retry flags', async () => {
    const out = await ok([
      'task',
      'add',
      'hook',
      '--cron',
      '0 0 3 * * *',
      '--timezone',
      'Europe/Berlin',
      '--http',
      'http://127.0.0.1:9/hook',
      '--max-attempts',
      '3',
      '--timeout',
      '5s',
      '--overlap',
      'allow',
      '--misfire',
      'skip',
      '--json',
    ]);
    const task = JSON.parse(out) as TaskJson & { nextFireAt: string };
    expect(task.spec).toMatchObject({
      schedule: { cron: '0 0 3 * * *', timezone: 'Europe/Berlin' },
      target: { http: { url: 'http://127.0.0.1:9/hook', method: 'POST' } },
      retry: { maxAttempts: 3 },
      timeout: 5_000,
      overlap: 'allow',
      misfire: { policy: 'skip' },
    });
    expect(task.nextFireAt).toMatch(ISO);
  });

  it('task add -f reads a document, flags override it', async () => {
    const path = writeFile(
      'one.yaml',
      'schedule:\n  delayAfter: 15m\ntarget:\n  topic: cleanup\nlabels:\n  team: ops\n',
    );
    expect(await ok(['task', 'add', 'cleanup', '-f', path, '--name', 'Cleanup'])).toMatch(
      /^created cleanup \(delayAfter 900000ms\)/,
    );
    expect((await getTask('cleanup')).spec).toMatchObject({
      name: 'Cleanup',
      schedule: { delayAfter: 900_000 },
      target: { topic: 'cleanup' },
    });
  });

  it('task add refuses bad input with exit 1 and the field on stderr', async () => {
    expect(await fails(['task', 'add', 'report', '--every', '1h', '--topic', 'reports'])).toMatch(
      /already_exists: task 'report' already exists/,
    );
    expect(await fails(['task', 'add', 'fast', '--every', '10ms', '--topic', 'x'])).toMatch(
      /schedule\.every: must be at least 100ms/,
    );
    expect(await fails(['task', 'add', 'nocron', '--cron', 'every day', '--topic', 'x'])).toMatch(/schedule\.cron/);
    expect(
      await fails(['task', 'add', 'zone', '--cron', '0 * * * *', '--timezone', 'Mars/Base', '--topic', 'x']),
    ).toMatch(/schedule\.timezone/);
    expect(await fails(['task', 'add', 'noschedule', '--topic', 'x'])).toMatch(/schedule: must have exactly one of/);
    expect(await fails(['task', 'add', 'attempts', '--every', '1h', '--topic', 'x', '--max-attempts', 'many'])).toMatch(
      /retry\.maxAttempts/,
    );
    expect(await fails(['task', 'add', 'payload', '--every', '1h', '--topic', 'x', '--payload', '{nope'])).toMatch(
      /--payload must be JSON/,
    );
    expect(await fails(['task', 'add', '-bad', '--every', '1h', '--topic', 'x'])).toMatch(/unknown option|id/);
    // A field the command line gave is named as its flag; one the file gave, as the document's field.
    const file = writeFile('bad.yaml', 'schedule:\n  every: 1h\ntarget:\n  topic: x\ntimeout: -1\n');
    const fromFile = await fails(['task', 'add', 'filed', '-f', file]);
    expect(fromFile).toMatch(/\n {2}- timeout: expected a duration/);
    expect(await fails(['task', 'add', 'filed', '-f', file, '--timeout', 'soon'])).toMatch(
      /\n {2}- --timeout: expected a duration/,
    );
    expect(await listIds()).toEqual(['cleanup', 'hook', 'report']);
  });

  it('task list prints a table, or JSON, filtered by status', async () => {
    const table = (await ok(['task', 'list'])).trimEnd().split('\n');
    expect(table[0]).toMatch(/^ID\s+STATUS\s+SCHEDULE\s+NEXT\s+RUNS\s+LAST\s+OWNER$/);
    expect(table.slice(1).map((line) => line.split(/\s+/)[0])).toEqual(['cleanup', 'hook', 'report']);
    expect(table.find((line) => line.startsWith('hook'))).toMatch(/cron 0 0 3 \* \* \* Europe\/Berlin/);
    const paused = JSON.parse(await ok(['task', 'list', '--status', 'paused', '--json'])) as { total: number };
    expect(paused.total).toBe(0);
    expect(await fails(['task', 'list', '--status', 'sleeping'])).toMatch(/status/);
  });

  it('task get prints the task as JSON; an unknown task is exit 1', async () => {
    expect((await getTask('hook')).id).toBe('hook');
    expect(await fails(['task', 'get', 'ghost'])).toMatch(/not_found: task 'ghost' does not exist/);
  });

  it('task update --every changes only the schedule; the same change again is unchanged', async () => {
    expect(await ok(['task', 'update', 'report', '--every', '2s'])).toBe('updated report\n');
    const task = await getTask('report');
    expect(task.spec).toMatchObject({
      schedule: { every: 2_000 },
      target: { topic: 'reports' },
      name: 'Daily report',
      payload: { format: 'pdf' },
    });
    expect(await ok(['task', 'update', 'report', '--every', '2s'])).toBe('unchanged report\n');
    expect(await fails(['task', 'update', 'report', '--every', '1ms'])).toMatch(/schedule\.every/);
    expect(await fails(['task', 'update', 'ghost', '--every', '2s'])).toMatch(/not_found/);
  });

  it('pause, resume, delete and restore, each idempotent', async () => {
    expect(await ok(['task', 'pause', 'report'])).toBe('paused report\n');
    expect(await ok(['task', 'pause', 'report'])).toBe('paused report\n');
    expect((await getTask('report')).status).toBe('paused');
    expect(await ok(['task', 'resume', 'report'])).toBe('resumed report\n');
    expect((await getTask('report')).status).toBe('active');
    // Quiet again: the 2 s schedule would keep the log growing.
    await ok(['task', 'pause', 'report']);

    expect(await ok(['task', 'delete', 'cleanup'])).toBe('deleted cleanup\n');
    expect(await ok(['task', 'delete', 'cleanup'])).toBe('deleted cleanup\n');
    expect((await getTask('cleanup')).status).toBe('deleted');
    expect(await fails(['task', 'pause', 'cleanup'])).toMatch(/illegal_state: .*deleted/);
    expect(await ok(['task', 'restore', 'cleanup'])).toBe('restored cleanup\n');
    expect((await getTask('cleanup')).status).toBe('active');

    for (const verb of ['pause', 'resume', 'delete', 'restore', 'trigger']) {
      expect(await fails(['task', verb, 'ghost'])).toMatch(/not_found/);
    }
  });

  it('cluster status shows the single node leading and holding every task', async () => {
    const out = await ok(['cluster', 'status']);
    expect(out).toMatch(/^single cluster seen from cli-node \(connected\), leader cli-node\n/);
    expect(out).toMatch(/\ncli-node \*\s+-\s+1\s+-\s+all\s+\d+/);
  });

  it('trigger fires now; history shows the fire', async () => {
    const out = await ok(['task', 'trigger', 'hook']);
    const fireId = /^fired hook: (\S+)\n$/.exec(out)?.[1];
    expect(fireId).toMatch(UUID);

    const history = JSON.parse(await ok(['history', 'hook', '--json'])) as { fires: Array<Record<string, unknown>> };
    // The hook's URL refuses connections and it has 3 attempts: by now it may be retrying.
    expect(history.fires[0]).toMatchObject({
      fireId,
      taskId: 'hook',
      node: 'cli-node',
      trigger: 'manual',
      attempts: expect.any(Number),
    });
    expect(history.fires[0]?.scheduledAt).toMatch(ISO);
    expect(history.fires[0]?.latenessMs).toEqual(expect.any(Number));

    const table = (await ok(['history', 'hook'])).trimEnd().split('\n');
    expect(table[0]).toMatch(/^SCHEDULEDAT\s+FIREDAT\s+LATENESSMS\s+TRIGGER\s+NODE\s+ATTEMPTS\s+STATUS/);
    expect(table[1]).toMatch(/manual\s+cli-node\s+[123]\s+/);
    expect(await fails(['history', 'ghost'])).toMatch(/not_found/);
    expect(await fails(['history', 'hook', '--limit', 'lots'])).toMatch(/limit/);
  });
});

describe('kairos apply', () => {
  const declared = `tasks:
  - id: nightly
    schedule: { cron: "0 0 3 * * *", timezone: Europe/Berlin }
    target: { topic: reports }
  - id: poll
    schedule: { every: 15m }
    target: { http: { url: "http://127.0.0.1:9/poll" } }
    payload: { source: apply }
`;

  it('creates what is missing; a second run finds everything unchanged', async () => {
    const path = writeFile('tasks.yaml', declared);
    expect(await ok(['apply', '-f', path])).toBe(
      'created nightly\ncreated poll\n2 tasks: 2 created, 0 updated, 0 unchanged, 0 refused\n',
    );
    expect(await ok(['apply', '-f', path])).toBe('2 tasks: 0 created, 0 updated, 2 unchanged, 0 refused\n');
    expect((await getTask('poll')).spec).toMatchObject({ schedule: { every: 900_000 }, payload: { source: 'apply' } });
  });

  it('updates what differs, in any of the accepted layouts (here: YAML documents)', async () => {
    const path = writeFile(
      'tasks-docs.yaml',
      'id: nightly\nschedule: { cron: "0 0 4 * * *", timezone: Europe/Berlin }\ntarget: { topic: reports }\n---\nid: poll\nschedule: { every: 900000 }\ntarget: { http: { url: "http://127.0.0.1:9/poll" } }\npayload: { source: apply }\n',
    );
    expect(await ok(['apply', '-f', path])).toBe(
      'updated nightly\n2 tasks: 0 created, 1 updated, 1 unchanged, 0 refused\n',
    );
    expect((await getTask('nightly')).spec.schedule).toEqual({ cron: '0 0 4 * * *', timezone: 'Europe/Berlin' });
  });

  it('an invalid file is refused whole: exit 1, the field on stderr, nothing created or changed', async () => {
    const logBefore = await readLog(url);
    const path = writeFile(
      'invalid.yaml',
      `tasks:
  - id: fine-one
    schedule: { every: 1h }
    target: { topic: a }
  - id: broken-one
    schedule: { cron: "99 * * * *" }
    target: { topic: b }
  - id: nightly
    schedule: { every: soon }
    target: { topic: reports }
`,
    );
    const stderr = await fails(['apply', '-f', path]);
    expect(stderr).toMatch(/tasks\[1\]\.schedule\.cron: .*99/);
    expect(stderr).toMatch(/tasks\[2\]\.schedule\.every/);
    expect(await listIds()).not.toContain('fine-one');
    // Other tasks may be retrying meanwhile: compare the streams of the file's tasks.
    const ofFile = (log: LogEvent[]) =>
      log.filter((e) => ['kairos-task-fine-one', 'kairos-task-broken-one', 'kairos-task-nightly'].includes(e.stream));
    expect(ofFile(await readLog(url))).toEqual(ofFile(logBefore));
    expect(ofFile(logBefore).map((e) => e.stream)).toEqual(['kairos-task-nightly', 'kairos-task-nightly']);
  });

  it('refuses duplicate ids, unparsable YAML and a missing file', async () => {
    const dup = writeFile(
      'dup.yaml',
      '- { id: twice, schedule: { every: 1h }, target: { topic: a } }\n- { id: twice, schedule: { every: 2h }, target: { topic: a } }\n',
    );
    expect(await fails(['apply', '-f', dup])).toMatch(/tasks\[1\]\.id: 'twice' appears more than once/);
    const broken = writeFile('broken.yaml', 'tasks: [\n');
    expect(await fails(['apply', '-f', broken])).toContain('broken.yaml');
    expect(await fails(['apply', '-f', join(work.path, 'missing.yaml')])).toMatch(/missing\.yaml/);
    expect(await listIds()).not.toContain('twice');
  });
});

describe('kairos events', () => {
  let lines: LogEvent[];

  it('--format ndjson prints one JSON event per line with position, stream, revision, type, data, time', async () => {
    const out = await ok(['events', '--format', 'ndjson']);
    expect(out.endsWith('\n')).toBe(true);
    lines = out
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as LogEvent);
    expect(lines.length).toBeGreaterThan(10);
    lines.forEach((e, i) => {
      expect(e.position).toBe(i + 1);
      expect(e).toEqual(
        expect.objectContaining({
          stream: expect.stringMatching(/^kairos-task-/),
          revision: expect.any(Number),
          type: expect.any(String),
          data: expect.any(Object),
          time: expect.stringMatching(ISO),
        }),
      );
    });
    expect(lines).toEqual((await readLog(url)).slice(0, lines.length));
    const fired = lines.find((e) => e.type === 'TaskFired' && e.data.taskId === 'hook');
    expect(fired?.data).toEqual(
      expect.objectContaining({
        taskId: 'hook',
        fireId: expect.stringMatching(UUID),
        scheduledAt: expect.stringMatching(ISO),
        firedAt: expect.stringMatching(ISO),
        node: 'cli-node',
        epoch: expect.any(Number),
      }),
    );
  });

  it('--from and --limit page through the log; text is the default format', async () => {
    const page = (await ok(['events', '--from', '3', '--limit', '2', '--format', 'ndjson']))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as LogEvent);
    expect(page.map((e) => e.position)).toEqual([3, 4]);
    const text = (await ok(['events', '--limit', '1'])).trimEnd().split('\n');
    expect(text).toHaveLength(1);
    expect(text[0]).toMatch(/^1\t\S+Z\tkairos-task-report@0\tTaskCreated\t\{/);
  });

  it('refuses bad flags', async () => {
    expect(await fails(['events', '--format', 'xml'])).toMatch(/--format/);
    expect(await fails(['events', '--from', '-1'])).toMatch(/--from/);
    expect(await fails(['events', '--limit', '0'])).toMatch(/--limit/);
  });

  it('with the node down, reads the embedded store directly and says so on stderr', async () => {
    await node?.kill('SIGTERM');
    expect(node?.child.exitCode).toBe(0);
    const logAtStop = (await kairos(['events', '--format', 'ndjson'], { KAIROS_DATA_DIR: data.path })).stdout;

    const viaEnv = await kairos(['events', '--format', 'ndjson'], { KAIROS_DATA_DIR: data.path });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stderr).toBe(`reading sqlite:${join(data.path, 'kairos.db')}\n`);
    const offline = viaEnv.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as LogEvent);
    expect(offline.slice(0, lines.length)).toEqual(lines);
    expect(viaEnv.stdout).toBe(logAtStop);

    const viaFlag = await kairos([
      'events',
      '--format',
      'ndjson',
      '--from',
      '2',
      '--limit',
      '3',
      '--data-dir',
      data.path,
    ]);
    expect(viaFlag.code).toBe(0);
    expect(viaFlag.stderr).toMatch(/^reading sqlite:/);
    expect(
      viaFlag.stdout
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as LogEvent).position),
    ).toEqual([2, 3, 4]);
  });

  it('with the node down and no store where pointed, fails without creating one', async () => {
    const nowhere = join(work.path, 'no-such-dir');
    expect(await fails(['events', '--data-dir', nowhere])).toMatch(/no event store at .*no-such-dir/);
    expect(existsSync(nowhere)).toBe(false);
  });

  it('other commands fail with exit 1 when the node is down', async () => {
    expect(await fails(['task', 'list'])).toMatch(/cannot reach the Kairos node at/);
  });
});

describe('usage errors', () => {
  it('unknown commands and missing arguments exit 1 with the reason on stderr', async () => {
    const unknown = await kairos(['frobnicate']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    const missing = await kairos(['task', 'pause']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/missing required argument 'id'/);
    const noFile = await kairos(['apply']);
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toMatch(/--file/);
  });
});
