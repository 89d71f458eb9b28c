import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The built CLI: e2e tests run what users run (`npm run build` precedes them). */
export const CLI = resolve(import.meta.dirname, '../../../dist/src/cli/main.js');

export const freePort = (): Promise<number> =>
  new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? ok(address.port) : fail(new Error('no port'))));
    });
  });

export const tempDir = (prefix: string): { path: string; remove(): void } => {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type NodeProcess = {
  url: string;
  child: ChildProcess;
  /** Everything the node printed, for failure messages. */
  output(): string;
  kill(signal: NodeJS.Signals): Promise<void>;
};

/** Starts `kairos start` as an OS process and waits until `/readyz` says ready. */
export const startNodeProcess = async (options: {
  dataDir: string;
  port: number;
  nodeId?: string;
  env?: Record<string, string>;
}): Promise<NodeProcess> => {
  const child = spawn(process.execPath, [CLI, 'start'], {
    env: {
      ...process.env,
      KAIROS_PORT: String(options.port),
      KAIROS_HOST: '127.0.0.1',
      KAIROS_DATA_DIR: options.dataDir,
      KAIROS_NODE_ID: options.nodeId ?? 'e2e-node',
      KAIROS_LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${options.port}`;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node exited with ${child.exitCode} before ready:\n${out}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`node not ready within 30 s:\n${out}`);
    }
    await sleep(50);
  }
  return {
    url,
    child,
    output: () => out,
    kill: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
};

export const api = async <T>(url: string, method: string, path: string, body?: unknown): Promise<T> => {
  const res = await fetch(`${url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
  return JSON.parse(text) as T;
};

export type LogEvent = {
  position: number;
  stream: string;
  revision: number;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  time: string;
};

/** The whole log through `GET /api/events`, page by page. */
export const readLog = async (url: string): Promise<LogEvent[]> => {
  const all: LogEvent[] = [];
  let from = 0;
  for (;;) {
    const page = await api<{ events: LogEvent[]; next: number }>(url, 'GET', `/api/events?from=${from}&limit=10000`);
    all.push(...page.events);
    if (page.events.length === 0) return all;
    from = page.next;
  }
};

export { sleep };
