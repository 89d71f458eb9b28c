import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const workerScript = join(here, 'fixtures', 'sqliteAppendWorker.ts');

export type Worker = { ready: Promise<void>; go(): void; result: Promise<unknown> };

/** Starts fixtures/sqliteAppendWorker.ts as a separate OS process (see there for the protocol). */
export const startWorker = (
  file: string,
  name: string,
  mode: 'claim' | 'spread',
  count: number,
  streams: number,
): Worker => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', workerScript, file, name, mode, String(count), String(streams)],
    {
      cwd: root,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout });
  let markReady: () => void = () => {};
  let result: unknown;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  lines.on('line', (line) => {
    if (line === 'ready') markReady();
    else if (line.startsWith('{')) result = JSON.parse(line);
  });
  const exited = new Promise<unknown>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0 && result !== undefined) resolve(result);
      else reject(new Error(`worker ${name} exited with ${code ?? signal}: ${stderr}`));
    });
  });
  return {
    // A worker that dies before it is ready must fail the test, not hang it.
    ready: Promise.race([ready, exited.then(() => undefined)]),
    go: () => child.stdin.write('go\n'),
    result: exited,
  };
};
