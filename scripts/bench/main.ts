import { fork } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { semiSpaceFlag } from '../../src/threads/youngGeneration.js';
import { capacity } from './capacity.js';
import { cluster } from './cluster.js';
import { clusterCapacity } from './clusterCapacity.js';
import { readLateness, readQuery, readRebuild } from './readSide.js';
import { burst, lateness, memory, recovery, type Result } from './scenarios.js';

/**
 * `npm run bench`: each scenario runs in its own process (clean heap, honest RSS) and prints one JSON
 * line; this parent prints a Markdown table to paste into docs/benchmarks.md. `--quick` shortens the
 * runs for a smoke check; the figures in the docs come from the full run.
 */
const scenarios: Record<string, (quick: boolean) => Promise<Result>> = {
  'lateness-spread': (quick) => lateness(10_000, quick ? 10 : 60, 'spread'),
  'lateness-aligned': (quick) => lateness(10_000, quick ? 10 : 60, 'aligned'),
  'lateness-spread-normal': (quick) => lateness(10_000, quick ? 10 : 60, 'spread', 'NORMAL'),
  burst: (quick) => burst(quick ? 20_000 : 100_000),
  'memory-100k': () => memory(100_000),
  'memory-1m': (quick) => memory(quick ? 200_000 : 1_000_000),
  recovery: (quick) => recovery(100_000, quick ? 2 : 5),
  // A period no longer than the session timeout: most moved tasks have a tick due while their node is being
  // found dead (a new owner claims a task at its next tick). Both fire 2,000 times a second.
  cluster: (quick) => cluster({ tasks: quick ? 1_000 : 10_000, everyMs: 5_000, sessionTimeoutMs: 5_000, quick }),
  'cluster-2s': (quick) => cluster({ tasks: quick ? 400 : 4_000, everyMs: 2_000, sessionTimeoutMs: 2_000, quick }),
  // The read side (issue 9), through a real node process, its API and CLI; 250 fires per task, 2 + 2 × 250 events.
  'read-query': (quick) => readQuery(quick ? 1_000 : 10_000),
  'read-rebuild': (quick) => readRebuild(quick ? 400 : 2_000),
  'read-lateness': (quick) => readLateness(quick),
  // Issue 10, end to end through a real node, the CLI and an SDK subscriber.
  capacity: (quick) => capacity(quick),
  'cluster-capacity': (quick) => clusterCapacity(quick ? 2_000 : 10_000, quick),
};

const args = process.argv.slice(2);
const child = args.indexOf('--scenario');
if (child >= 0) {
  const name = args[child + 1] as string;
  const run = scenarios[name];
  if (!run) throw new Error(`unknown scenario ${name}`);
  const result = await run(args.includes('--quick'));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const quick = args.includes('--quick');
const onlyIndex = args.indexOf('--only');
const names = onlyIndex >= 0 ? (args[onlyIndex + 1] ?? '').split(',') : Object.keys(scenarios);
process.stdout.write(
  `Kairos benchmarks — node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB${quick ? ' (quick)' : ''}\n\n`,
);
const self = fileURLToPath(import.meta.url);
for (const name of names) {
  const output = await new Promise<string>((resolve, reject) => {
    let out = '';
    const p = fork(self, ['--scenario', name, ...(quick ? ['--quick'] : [])], {
      // The node's own young generation (src/threads/youngGeneration.ts): in-process scenarios measure it as shipped.
      execArgv: ['--expose-gc', '--max-old-space-size=8192', semiSpaceFlag],
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`scenario ${name} exited with ${code}`))));
  });
  const result = JSON.parse(output.trim().split('\n').at(-1) as string) as Result;
  process.stdout.write(
    `${Object.entries(result)
      .map(([k, v]) => `| ${k} | ${v} |`)
      .join('\n')}\n\n`,
  );
}
