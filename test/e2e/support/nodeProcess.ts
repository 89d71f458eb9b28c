import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KAIROS_CLI,
  type NodeHandle,
  freePort,
  readLog,
  startNodeProcess as startNode,
  type LogEvent,
} from '../../../scripts/cluster/localCluster.js';

/** The built CLI: e2e tests run what users run (`npm run build` precedes them). */
export const CLI = KAIROS_CLI;
export { freePort, readLog };
export type { LogEvent } from '../../../scripts/cluster/localCluster.js';

export const tempDir = (prefix: string): { path: string; remove(): void } => {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The outcomes (`TaskSucceeded` / `TaskFailed`) recorded for one fire, in log order. */
export const outcomesOf = (log: readonly LogEvent[], fireId: string | undefined): LogEvent[] =>
  log.filter((e) => (e.type === 'TaskSucceeded' || e.type === 'TaskFailed') && e.data.fireId === fireId);

export type NodeProcess = NodeHandle & {
  /** SIGKILL, or a graceful SIGTERM; resolves when the process has exited. */
  kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<void>;
};

/** Starts one embedded `kairos start` process (scripts/cluster/localCluster.ts) and waits until `/readyz` says ready. */
export const startNodeProcess = async (options: {
  dataDir: string;
  port: number;
  nodeId?: string;
  env?: Record<string, string>;
}): Promise<NodeProcess> => {
  const node = await startNode({ ...options, nodeId: options.nodeId ?? 'e2e-node' });
  return Object.assign(node, {
    kill: async (signal: 'SIGKILL' | 'SIGTERM') => {
      if (signal === 'SIGKILL') await node.kill9();
      else await node.stop();
    },
  });
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

export type CliRun = { code: number | null; stdout: string; stderr: string };

/**
 * Runs the built `kairos ...args` in `cwd` with only the KAIROS_* variables given in `env` (the caller's
 * own are not inherited), killed after `timeoutMs`.
 */
export const runCli = (
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs: number },
): Promise<CliRun> =>
  new Promise((resolve, reject) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KAIROS_')));
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd,
      env: { ...base, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
