import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ValidationError, isValidationError, parseOrThrow, type FieldIssue } from '../../domain/errors/index.js';
import type { ApiClient } from './apiClient.js';

/**
 * The task documents of a file: a list, a `{tasks: [...]}` mapping, or YAML documents separated by
 * `---`. All are validated before anything is sent, so a bad file changes nothing.
 */
export const readTaskFile = async (file: string): Promise<Record<string, unknown>[]> => {
  const [{ parseAllDocuments }, { TaskSpec }] = await Promise.all([
    import('yaml'),
    import('../../domain/task/spec.js'),
  ]);
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const tasks: unknown[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length > 0)
      throw new ValidationError([{ path: file, message: doc.errors[0]?.message ?? 'invalid YAML' }]);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) tasks.push(...value);
    else if (typeof value === 'object' && Array.isArray((value as { tasks?: unknown }).tasks))
      tasks.push(...(value as { tasks: unknown[] }).tasks);
    else tasks.push(value);
  }
  // The same validation as the API's, so a file the node would refuse in part is refused whole here.
  const issues: FieldIssue[] = tasks.flatMap((t, i) => {
    try {
      parseOrThrow(TaskSpec, t, `tasks[${i}]`);
      return [];
    } catch (err) {
      if (isValidationError(err)) return err.issues;
      throw err;
    }
  });
  const ids = tasks.map((t) => (t as { id?: unknown }).id);
  ids.forEach((id, i) => {
    if (ids.indexOf(id) !== i)
      issues.push({ path: `tasks[${i}].id`, message: `'${String(id)}' appears more than once` });
  });
  if (issues.length > 0) throw new ValidationError(issues);
  return tasks as Record<string, unknown>[];
};

export const registerApply = (program: Command, client: () => ApiClient): void => {
  program
    .command('apply')
    .description(
      'declare tasks from a YAML/JSON file: creates what is missing, updates what differs, leaves the rest (idempotent)',
    )
    .requiredOption('-f, --file <file>', 'tasks file')
    .action(async (flags: { file: string }) => {
      const tasks = await readTaskFile(flags.file);
      const api = client();
      const counts = { created: 0, updated: 0, unchanged: 0 };
      for (const task of tasks) {
        const id = String(task.id);
        const { body } = await api.put<{ result: keyof typeof counts }>(`/api/tasks/${encodeURIComponent(id)}`, task);
        counts[body.result]++;
        if (body.result !== 'unchanged') process.stdout.write(`${body.result} ${id}\n`);
      }
      process.stdout.write(
        `${tasks.length} tasks: ${counts.created} created, ${counts.updated} updated, ${counts.unchanged} unchanged\n`,
      );
    });
};
