import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { ApiClient } from './apiClient.js';
import { printJson, printTable } from './output.js';
import { applyTaskFlags, withTaskFlags, type TaskFlags } from './taskFlags.js';

type TaskJson = {
  id: string;
  status: string;
  lifecycle: string;
  nextFireAt: string | null;
  spec: Record<string, unknown> | null;
  lastOutcome: { status: string } | null;
  runs: number;
  owner: { node: string } | null;
};

const readDocument = async (file: string): Promise<Record<string, unknown>> => {
  const { parse: parseYaml } = await import('yaml');
  const doc: unknown = parseYaml(readFileSync(file, 'utf8'));
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new Error(`${file} must hold one task document (a mapping)`);
  return doc as Record<string, unknown>;
};

const scheduleText = (spec: Record<string, unknown> | null): string => {
  const s = spec?.schedule as Record<string, unknown> | undefined;
  if (!s) return '-';
  if (s.cron) return `cron ${String(s.cron)}${s.timezone && s.timezone !== 'UTC' ? ` ${String(s.timezone)}` : ''}`;
  if (s.every !== undefined) return `every ${String(s.every)}ms`;
  if (s.delayAfter !== undefined) return `delayAfter ${String(s.delayAfter)}ms`;
  return `at ${String(s.at)}`;
};

export const registerTaskCommands = (program: Command, client: () => ApiClient): void => {
  const task = program.command('task').description('manage tasks through the node API');

  withTaskFlags(task.command('add [id]').description('create a task from flags and/or a file (-f)'))
    .option('-f, --file <file>', 'task document (YAML or JSON)')
    .option('--json', 'print the created task as JSON')
    .action(async (id: string | undefined, flags: TaskFlags & { file?: string; json?: boolean }) => {
      const base = flags.file ? await readDocument(flags.file) : {};
      const doc = applyTaskFlags(id ? { ...base, id } : base, flags);
      const { body } = await client().post<TaskJson>('/api/tasks', doc);
      if (flags.json) printJson(body);
      else
        process.stdout.write(`created ${body.id} (${scheduleText(body.spec)}), next fire ${body.nextFireAt ?? '-'}\n`);
    });

  task
    .command('list')
    .description('list tasks')
    .option('--status <status>', 'active | paused | deleted | all', 'all')
    .option('--json', 'print JSON')
    .action(async (flags: { status: string; json?: boolean }) => {
      const { body } = await client().get<{ total: number; tasks: TaskJson[] }>(
        `/api/tasks?status=${encodeURIComponent(flags.status)}&limit=10000`,
      );
      if (flags.json) return printJson(body);
      printTable(
        body.tasks.map((t) => ({
          id: t.id,
          status: t.lifecycle,
          schedule: scheduleText(t.spec),
          next: t.nextFireAt,
          runs: t.runs,
          last: t.lastOutcome?.status,
          owner: t.owner?.node,
        })),
        ['id', 'status', 'schedule', 'next', 'runs', 'last', 'owner'],
      );
      if (body.total > body.tasks.length)
        process.stdout.write(`(${body.tasks.length} of ${body.total} shown; use --json or the API to page)\n`);
    });

  task
    .command('get <id>')
    .description('show a task (JSON)')
    .action(async (id: string) => printJson((await client().get(`/api/tasks/${encodeURIComponent(id)}`)).body));

  withTaskFlags(
    task.command('update <id>').description('change a task: flags over its current document, or a whole document (-f)'),
  )
    .option('-f, --file <file>', 'the whole new task document')
    .action(async (id: string, flags: TaskFlags & { file?: string }) => {
      const api = client();
      const current = flags.file
        ? await readDocument(flags.file)
        : ((await api.get<TaskJson>(`/api/tasks/${encodeURIComponent(id)}`)).body.spec ?? {});
      const { body } = await api.put<{ result: string; task: TaskJson }>(
        `/api/tasks/${encodeURIComponent(id)}`,
        applyTaskFlags({ ...current, id }, flags),
      );
      process.stdout.write(`${body.result} ${id}\n`);
    });

  for (const [verb, past] of [
    ['pause', 'paused'],
    ['resume', 'resumed'],
    ['restore', 'restored'],
  ] as const) {
    task
      .command(`${verb} <id>`)
      .description(`${verb} a task`)
      .action(async (id: string) => {
        await client().post(`/api/tasks/${encodeURIComponent(id)}/${verb}`);
        process.stdout.write(`${past} ${id}\n`);
      });
  }

  task
    .command('delete <id>')
    .description('delete a task (soft: `task restore` brings it back)')
    .action(async (id: string) => {
      await client().delete(`/api/tasks/${encodeURIComponent(id)}`);
      process.stdout.write(`deleted ${id}\n`);
    });

  task
    .command('trigger <id>')
    .description('fire a task now, outside its schedule')
    .action(async (id: string) => {
      const { body } = await client().post<{ fireId: string }>(`/api/tasks/${encodeURIComponent(id)}/trigger`);
      process.stdout.write(`fired ${id}: ${body.fireId}\n`);
    });

  program
    .command('history <id>')
    .description('fires of a task, newest first')
    .option('--limit <n>', 'how many fires', '20')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { limit: string; json?: boolean }) => {
      const { body } = await client().get<{ fires: Array<Record<string, unknown>> }>(
        `/api/tasks/${encodeURIComponent(id)}/history?limit=${encodeURIComponent(flags.limit)}`,
      );
      if (flags.json) return printJson(body);
      printTable(body.fires, [
        'scheduledAt',
        'firedAt',
        'latenessMs',
        'trigger',
        'node',
        'attempts',
        'status',
        'durationMs',
        'message',
      ]);
    });
};
