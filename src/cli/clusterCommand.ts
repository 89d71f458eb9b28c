import type { Command } from 'commander';
import type { QueryResult } from '../projections/queries/index.js';
import { withQuery, type ApiClient } from './apiClient.js';
import { clip, printJson, printMore, printTable } from './output.js';

type ClusterJson = {
  mode: string;
  nodeId: string;
  connection: string;
  slotCount: number | null;
  leader: string | null;
  members: Array<{ id: string; address?: string; weight: number; labels: Record<string, string> }>;
  unplaceable: string[];
  slotsPerNode: Record<string, number> | null;
  tasksPerNode: Record<string, number>;
};

type HistoryJson = QueryResult<'clusterHistory'>;
type HistoryFlags = {
  kind?: string;
  node?: string;
  task?: string;
  since?: string;
  until?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
};

/**
 * `kairos cluster status`: members, and how slots and tasks divide among them; `kairos cluster history`:
 * what happened to the cluster and who took over which task, and why.
 */
export const registerCluster = (program: Command, client: () => ApiClient): void => {
  const cluster = program.command('cluster').description('the cluster as a node sees it');

  cluster
    .command('status')
    .description('members, slots and tasks per node, connection state')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }) => {
      const { body } = await client().get<ClusterJson>('/api/cluster');
      if (flags.json) return printJson(body);
      process.stdout.write(
        `${body.mode} cluster seen from ${body.nodeId} (${body.connection})${body.slotCount ? `, ${body.slotCount} slots` : ''}, leader ${body.leader ?? '(none)'}\n`,
      );
      printTable(
        body.members.map((m) => ({
          node: m.id + (m.id === body.leader ? ' *' : ''),
          address: m.address,
          weight: m.weight,
          labels:
            Object.entries(m.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(',') || undefined,
          slots: body.slotsPerNode?.[m.id] ?? (body.slotCount ? 0 : 'all'),
          tasks: body.tasksPerNode[m.id] ?? 0,
        })),
        ['node', 'address', 'weight', 'labels', 'slots', 'tasks'],
      );
      if (body.unplaceable.length > 0)
        process.stdout.write(
          `${body.unplaceable.length} pinned task(s) no live node may hold: ${body.unplaceable.slice(0, 20).join(', ')}${body.unplaceable.length > 20 ? ', …' : ''}\n`,
        );
    });

  cluster
    .command('history')
    .description('leaders, members joining and leaving, slot moves, and every change of a task owner; newest first')
    .option(
      '--kind <list>',
      'comma list of leader-elected, node-joined, node-left, slots-moved, orphaned-lease-removed, tasks-unplaceable, task-assigned, task-reassigned, task-released',
    )
    .option('--node <id>', 'only entries about this node (as the new or the previous one)')
    .option('--task <id>', "only this task's owner changes")
    .option('--since <time>', 'at or after: ISO-8601, or a duration ago (15m, 24h, 7d), or now')
    .option('--until <time>', 'before: ISO-8601, or a duration ago')
    .option('--limit <n>', 'entries per page (default 100, at most 1000)')
    .option('--cursor <cursor>', 'the next page, as the previous page named it')
    .option('--json', "print the API's JSON")
    .action(async ({ json, ...filters }: HistoryFlags) => {
      const { body } = await client().get<HistoryJson>(withQuery('/api/cluster/history', filters));
      if (json) return printJson(body);
      printTable(
        body.entries.map((e) => ({
          at: e.at,
          kind: e.kind,
          node: e.node,
          previous: e.previousNode,
          task: e.taskId,
          epoch: e.epoch,
          reason: e.reason,
          details: Object.keys(e.details).length === 0 ? null : clip(JSON.stringify(e.details)),
        })),
        ['at', 'kind', 'node', 'previous', 'task', 'epoch', 'reason', 'details'],
      );
      printMore(body.next);
    });
};
