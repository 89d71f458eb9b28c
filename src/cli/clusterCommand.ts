import type { Command } from 'commander';
import type { ApiClient } from './apiClient.js';
import { printJson, printTable } from './output.js';

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

/** `kairos cluster status`: members, and how slots and tasks divide among them. */
export const registerCluster = (program: Command, client: () => ApiClient): void => {
  program
    .command('cluster')
    .description('the cluster as a node sees it')
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
};
