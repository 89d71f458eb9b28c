import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { withQuery, type ApiClient } from './apiClient.js';
import { printJson, printMore, printTable } from './output.js';
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

type TaskListFlags = {
  status: string;
  owner?: string;
  failing?: boolean;
  q?: string;
  topic?: string;
  label?: string[];
  sort?: string;
  order?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
};

/** Why an operator acts: sent in the body, recorded with the event (absent when not given). */
type ReasonFlag = { reason?: string };
const REASON = ['--reason <text>', 'why: recorded with the change, shown by `kairos audit`'] as const;

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

/** A task as a table row (`task list`, and `state` for the board as it was). */
export const taskRow = (t: TaskJson): Record<string, unknown> => ({
  id: t.id,
  status: t.lifecycle,
  schedule: scheduleText(t.spec),
  next: t.nextFireAt,
  runs: t.runs,
  last: t.lastOutcome?.status,
  owner: t.owner?.node,
});
export const TASK_COLUMNS = ['id', 'status', 'schedule', 'next', 'runs', 'last', 'owner'] as const;

export const registerTaskCommands = (program: Command, client: () => ApiClient): void => {
  const task = program.command('task').description('manage tasks through the node API');

  withTaskFlags(task.command('add [id]').description('create a task from flags and/or a file (-f)'))
    .option('-f, --file <file>', 'task document (YAML or JSON)')
    .option(...REASON)
    .option('--json', 'print the created task as JSON')
    .action(async (id: string | undefined, flags: TaskFlags & ReasonFlag & { file?: string; json?: boolean }) => {
      const base = flags.file ? await readDocument(flags.file) : {};
      const doc = applyTaskFlags(id ? { ...base, id } : base, flags);
      const { body } = await client().post<TaskJson>('/api/tasks', { ...doc, reason: flags.reason });
      if (flags.json) printJson(body);
      else
        process.stdout.write(`created ${body.id} (${scheduleText(body.spec)}), next fire ${body.nextFireAt ?? '-'}\n`);
    });

  task
    .command('list')
    .description('list tasks: filtered, searched, sorted, a page at a time')
    .option('--status <list>', 'comma list of active, paused, deleted, running, idle; or all', 'all')
    .option('--owner <node>', 'only tasks this node holds')
    .option('--failing', 'only tasks whose last fire failed')
    .option('--q <text>', 'search the id, name, topic and webhook URL')
    .option('--topic <topic>', 'only tasks delivering to this topic')
    .option('--label <key=value>', 'only tasks with this label (repeatable)', (pair: string, all: string[] = []) => [
      ...all,
      pair,
    ])
    .option('--sort <field>', 'id | name | status | owner | nextFireAt | lastFireAt | failureStreak')
    .option('--order <order>', 'asc | desc')
    .option('--limit <n>', 'tasks per page (default 1000)')
    .option('--cursor <cursor>', 'the next page, as the previous page named it')
    .option('--json', "print the API's JSON")
    .action(async ({ json, failing, label, ...filters }: TaskListFlags) => {
      const { body } = await client().get<{ total: number; tasks: TaskJson[]; next: string | null }>(
        withQuery('/api/tasks', {
          ...filters,
          failing: failing ? 'true' : undefined,
          labels: label?.join(','),
        }),
      );
      if (json) return printJson(body);
      printTable(body.tasks.map(taskRow), TASK_COLUMNS);
      // Without a next page the rows are the total; a line saying so would only repeat it.
      if (body.next) process.stdout.write(`${body.tasks.length} of ${body.total} tasks shown\n`);
      printMore(body.next);
    });

  task
    .command('get <id>')
    .description('show a task (JSON)')
    .action(async (id: string) => printJson((await client().get(`/api/tasks/${encodeURIComponent(id)}`)).body));

  withTaskFlags(
    task.command('update <id>').description('change a task: flags over its current document, or a whole document (-f)'),
  )
    .option('-f, --file <file>', 'the whole new task document')
    .option(...REASON)
    .action(async (id: string, flags: TaskFlags & ReasonFlag & { file?: string }) => {
      const api = client();
      const current = flags.file
        ? await readDocument(flags.file)
        : ((await api.get<TaskJson>(`/api/tasks/${encodeURIComponent(id)}`)).body.spec ?? {});
      const { body } = await api.put<{ result: string; task: TaskJson }>(`/api/tasks/${encodeURIComponent(id)}`, {
        ...applyTaskFlags({ ...current, id }, flags),
        reason: flags.reason,
      });
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
      .option(...REASON)
      .action(async (id: string, flags: ReasonFlag) => {
        await client().post(`/api/tasks/${encodeURIComponent(id)}/${verb}`, { reason: flags.reason });
        process.stdout.write(`${past} ${id}\n`);
      });
  }

  task
    .command('delete <id>')
    .description('delete a task (soft: `task restore` brings it back)')
    .option(...REASON)
    .action(async (id: string, flags: ReasonFlag) => {
      await client().delete(`/api/tasks/${encodeURIComponent(id)}`, { reason: flags.reason });
      process.stdout.write(`deleted ${id}\n`);
    });

  task
    .command('trigger <id>')
    .description('fire a task now, outside its schedule')
    .option(...REASON)
    .action(async (id: string, flags: ReasonFlag) => {
      const { body } = await client().post<{ fireId: string }>(`/api/tasks/${encodeURIComponent(id)}/trigger`, {
        reason: flags.reason,
      });
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
