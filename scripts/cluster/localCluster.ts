import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { semiSpaceFlag } from '../../src/threads/youngGeneration.js';

/**
 * Kairos nodes as OS processes on this machine, for the chaos and e2e tests and the benchmarks.
 *
 * ```ts
 * const ensemble = await startEnsemble();                         // scripts/zk/ensemble.ts
 * const cluster = createLocalCluster({ zk: `${ensemble.connectionString}/kairos/chaos` });
 * try {
 *   const [a, b] = await Promise.all([cluster.add(), cluster.add()]); // node-1, node-2, ready
 *   await a.kill9();                                                  // or pause()/resume(), stop(), restart()
 *   const { ok, report } = await cluster.verify();                    // `kairos verify` on the shared log
 * } finally {
 *   await cluster.stop();                                             // kills every process, removes dir
 * }
 * ```
 *
 * - Every node runs `node dist/src/cli/main.js start` (build first) with its own data directory
 *   (`<dir>/<nodeId>`) and a free loopback port, on one shared SQLite log (`<dir>/shared.db`), in
 *   cluster mode when `zk` is given (a single embedded node otherwise: see `startNodeProcess`).
 * - `add()` and `restart()` resolve once `GET /readyz` answers 200.
 * - A node's stdout/stderr are kept in memory (`output()`) and appended to `<dataDir>/node.log`.
 * - `cluster.stop()` never throws and leaves no process behind, paused ones included (SIGCONT then
 *   SIGKILL); the processes are also SIGKILLed if the calling process exits without stopping them.
 * - Only `KAIROS_*` variables set here reach the nodes: the caller's own are not inherited.
 */

export type LocalClusterOptions = {
  /** ZooKeeper connection string with chroot (`KAIROS_ZK`); absent: each node is an embedded single node. */
  zk?: string;
  /** The shared log (`KAIROS_STORE`), e.g. an `esdb://` URL. @default `sqlite:<dir>/shared.db` */
  store?: string;
  /** `KAIROS_ZK_SESSION_TIMEOUT`. @default '2s' */
  sessionTimeout?: string;
  /** Holds the shared log and every node's data directory. @default a new temporary directory, removed by stop() */
  dir?: string;
  /** `KAIROS_LOG_LEVEL` of every node. @default 'warn' */
  logLevel?: string;
  /** More environment for every node (e.g. `KAIROS_ACK_TIMEOUT`). */
  env?: Record<string, string>;
  /** How long a node may take to answer `/readyz` 200. @default 30_000 */
  readyTimeoutMs?: number;
  /** Ids of nodes added without one: `${prefix}-1`, `${prefix}-2`, ... @default 'node' */
  nodeIdPrefix?: string;
};

export type AddNodeOptions = {
  /** @default `${nodeIdPrefix}-<n>` */
  nodeId?: string;
  /** More environment for this node only. */
  env?: Record<string, string>;
};

export type NodeState = 'running' | 'paused' | 'exited';

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export interface NodeHandle {
  readonly nodeId: string;
  /** `http://127.0.0.1:<port>`, the same across restarts. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Pid of the current process (a restart changes it). */
  readonly pid: number;
  /** The current process (a restart changes it). */
  readonly child: ChildProcess;
  readonly state: NodeState;
  /** The current process's exit, once it has exited. */
  readonly exit: Exit | null;
  /** Everything every process of this node printed, restarts included. */
  output(): string;
  /** SIGKILL (SIGCONT first when paused); resolves when the process has exited. */
  kill9(): Promise<void>;
  /** SIGSTOP: the process freezes, its ZooKeeper session starts to time out. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** SIGTERM (graceful stop), waits for the exit; SIGKILL and throws if it takes longer than `timeoutMs` (default 30 s). */
  stop(timeoutMs?: number): Promise<Exit>;
  /** Stops the node if it runs, then starts it again with the same id, port and data directory, and waits until ready. */
  restart(): Promise<void>;
}

export interface LocalCluster {
  readonly dir: string;
  /** The `KAIROS_STORE` of every node (`sqlite:<dir>/shared.db` unless given). */
  readonly store: string;
  /** Every node ever added, in order (stopped ones included). */
  readonly nodes: readonly NodeHandle[];
  /** Starts one more node and waits until it is ready. */
  add(options?: AddNodeOptions): Promise<NodeHandle>;
  node(nodeId: string): NodeHandle;
  /** Runs `kairos verify --json` on the shared log, read directly from the store (not through a node). */
  verify(): Promise<VerifyRun>;
  /** Kills every process (SIGKILL) and removes `dir` if the cluster created it. Idempotent, never throws. */
  stop(): Promise<void>;
}

export type VerifyRun = {
  /** The CLI's exit code: 0 clean, 1 violations. */
  code: number | null;
  report: VerifyReportJson;
  stderr: string;
};

/** The JSON of `kairos verify --json` (domain/verify/verifyLog.ts `VerifyReport`). */
export type VerifyReportJson = {
  ok: boolean;
  tasks: number;
  events: number;
  fires: number;
  inFlight: number;
  violations: Array<{ kind: string; taskId: string; revision: number | null; message: string }>;
  counts: Record<string, number>;
};

/** The repository root: the nearest package.json above this file, from scripts/ and from dist/scripts/ alike. */
const repoRoot = (): string => {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${import.meta.dirname}`);
    dir = up;
  }
  return dir;
};

/** The built CLI: what users run (`npm run build` first). */
export const KAIROS_CLI = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

/** A loopback port nobody listened on a moment ago. */
export const freePort = (): Promise<number> =>
  new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? ok(address.port) : fail(new Error('no port'))));
    });
  });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The caller's environment without its `KAIROS_*` settings, so a developer's shell cannot redirect a node. */
const baseEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KAIROS_')));

const MEMBER_STILL_THERE = /cluster member '[^']+' already exists/;

/** Every live child of this process, killed synchronously if it exits without stopping them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
const track = (child: ChildProcess): void => {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) {
        c.kill('SIGCONT');
        c.kill('SIGKILL');
      }
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
};

export type NodeProcessOptions = {
  nodeId: string;
  port: number;
  dataDir: string;
  /** `KAIROS_*` and anything else the node needs, beyond port, host, data dir and node id. */
  env?: Record<string, string>;
  /** @default 'warn' */
  logLevel?: string;
  /** @default 30_000 */
  readyTimeoutMs?: number;
};

/**
 * One `kairos start` process (embedded single node unless `env` says `KAIROS_ZK`), ready when this
 * resolves; a node that exits or is not ready in time is killed and the error carries its output.
 */
export const startNodeProcess = async (options: NodeProcessOptions): Promise<NodeHandle> => {
  const { handle, ready } = launchNode(options);
  await ready;
  return handle;
};

/** Spawns the process at once; `ready` settles when it answers `/readyz` (or is killed for not doing so). */
const launchNode = (options: NodeProcessOptions): { handle: NodeHandle; ready: Promise<void> } => {
  mkdirSync(options.dataDir, { recursive: true });
  const url = `http://127.0.0.1:${options.port}`;
  const logFile = join(options.dataDir, 'node.log');
  let out = '';
  let child!: ChildProcess;
  let exited!: Promise<Exit>;
  let exit: Exit | null = null;
  let paused = false;
  /** False once kill9() or stop() was asked for: a start still retrying must not spawn again. */
  let wanted = true;

  const spawnOnce = (): ChildProcess => {
    paused = false;
    exit = null;
    // As `npm start` and the image start a node: with the young generation of youngGeneration.ts.
    child = spawn(process.execPath, [semiSpaceFlag, KAIROS_CLI, 'start'], {
      env: {
        ...baseEnv(),
        KAIROS_PORT: String(options.port),
        KAIROS_HOST: '127.0.0.1',
        KAIROS_DATA_DIR: options.dataDir,
        KAIROS_NODE_ID: options.nodeId,
        KAIROS_LOG_LEVEL: options.logLevel ?? 'warn',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track(child);
    const current = child;
    exited = new Promise((resolve) =>
      current.once('exit', (code, signal) => {
        exit = { code, signal };
        resolve(exit);
      }),
    );
    const collect = (d: Buffer): void => {
      const text = d.toString();
      out += text;
      appendFileSync(logFile, text);
    };
    current.stdout?.on('data', collect);
    current.stderr?.on('data', collect);
    return current;
  };

  const launch = async (): Promise<void> => {
    const timeoutMs = options.readyTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!wanted) throw new Error(`${options.nodeId} was stopped while starting`);
      const from = out.length;
      const current = spawnOnce();
      for (;;) {
        if (current.exitCode !== null || current.signalCode !== null) {
          // After a kill -9 the old session's member znode lives until the session expires, and the
          // node refuses to start beside it (as under a supervisor): start it again until it is gone.
          if (MEMBER_STILL_THERE.test(out.slice(from)) && Date.now() < deadline) break;
          throw new Error(`${options.nodeId} exited (${current.exitCode ?? current.signalCode}) before ready:\n${out}`);
        }
        try {
          if ((await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) })).ok) return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) {
          await killHard();
          throw new Error(`${options.nodeId} not ready within ${timeoutMs} ms:\n${out}`);
        }
        await sleep(50);
      }
      await sleep(200);
    }
  };

  const running = (): boolean => exit === null;
  const killHard = async (): Promise<void> => {
    wanted = false;
    if (running()) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    await exited;
  };
  const stop = async (timeoutMs = 30_000): Promise<Exit> => {
    wanted = false;
    if (!running()) return exit as Exit;
    if (paused) child.kill('SIGCONT');
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    const result = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (result === 'late') {
      await killHard();
      throw new Error(`${options.nodeId} did not exit within ${timeoutMs} ms of SIGTERM:\n${out.slice(-4_000)}`);
    }
    return result;
  };

  const ready = launch();
  const handle: NodeHandle = {
    nodeId: options.nodeId,
    url,
    port: options.port,
    dataDir: options.dataDir,
    get pid() {
      return child.pid ?? -1;
    },
    get child() {
      return child;
    },
    get state(): NodeState {
      return !running() ? 'exited' : paused ? 'paused' : 'running';
    },
    get exit() {
      return exit;
    },
    output: () => out,
    kill9: killHard,
    pause: () => {
      if (!running()) throw new Error(`${options.nodeId} is not running`);
      child.kill('SIGSTOP');
      paused = true;
    },
    resume: () => {
      if (!running()) throw new Error(`${options.nodeId} is not running`);
      child.kill('SIGCONT');
      paused = false;
    },
    stop,
    restart: async () => {
      await stop();
      wanted = true;
      await launch();
    },
  };
  return { handle, ready };
};

/** One event as `GET /api/events` shows it. */
export type LogEvent = {
  position: number;
  stream: string;
  revision: number;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  time: string;
};

/** The whole log through a node's `GET /api/events`, page by page. */
export const readLog = async (url: string): Promise<LogEvent[]> => {
  const all: LogEvent[] = [];
  let from = 0;
  for (;;) {
    const res = await fetch(`${url}/api/events?from=${from}&limit=10000`);
    if (!res.ok) throw new Error(`GET /api/events → ${res.status}: ${await res.text()}`);
    const page = (await res.json()) as { events: LogEvent[]; next: number };
    all.push(...page.events);
    if (page.events.length === 0) return all;
    from = page.next;
  }
};

/** A cluster of node processes on one shared log (see the header of this file). */
export const createLocalCluster = (options: LocalClusterOptions = {}): LocalCluster => {
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'kairos-cluster-'));
  mkdirSync(dir, { recursive: true });
  const store = options.store ?? `sqlite:${join(dir, 'shared.db')}`;
  const nodes: NodeHandle[] = [];
  const ids = new Set<string>();
  let stopped = false;
  const nextId = (): string => {
    const prefix = options.nodeIdPrefix ?? 'node';
    let n = ids.size + 1;
    while (ids.has(`${prefix}-${n}`)) n++;
    return `${prefix}-${n}`;
  };

  const add = async (addOptions: AddNodeOptions = {}): Promise<NodeHandle> => {
    if (stopped) throw new Error('the cluster is stopped');
    const nodeId = addOptions.nodeId ?? nextId();
    // Reserved before any await, so that concurrent add() calls get distinct ids.
    if (ids.has(nodeId)) throw new Error(`${nodeId} is already in the cluster`);
    ids.add(nodeId);
    const env = {
      KAIROS_STORE: store,
      ...(options.zk ? { KAIROS_ZK: options.zk, KAIROS_ZK_SESSION_TIMEOUT: options.sessionTimeout ?? '2s' } : {}),
      ...options.env,
      ...addOptions.env,
    };
    // A free port can be taken by another process before the node binds it: pick another one then.
    for (let attempt = 1; ; attempt++) {
      const { handle, ready } = launchNode({
        nodeId,
        port: await freePort(),
        dataDir: join(dir, nodeId),
        env,
        ...(options.logLevel ? { logLevel: options.logLevel } : {}),
        ...(options.readyTimeoutMs ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
      });
      // Listed while starting, so that stop() kills it even if the caller gave up waiting.
      nodes.push(handle);
      try {
        await ready;
        return handle;
      } catch (err) {
        nodes.splice(nodes.indexOf(handle), 1);
        if (attempt >= 3 || !String((err as Error).message).includes('EADDRINUSE')) throw err;
      }
    }
  };

  const verify = (): Promise<VerifyRun> =>
    new Promise((resolve, reject) => {
      // Port 1 (tcpmux) has no listener here: the CLI finds no node and reads the store itself.
      const child = spawn(
        process.execPath,
        [KAIROS_CLI, '--url', 'http://127.0.0.1:1', 'verify', '--json', '--store', store],
        { env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('error', reject);
      child.once('close', (code) => {
        try {
          resolve({ code, report: JSON.parse(stdout) as VerifyReportJson, stderr });
        } catch {
          reject(new Error(`kairos verify exited ${code} without a JSON report:\n${stdout}\n${stderr}`));
        }
      });
    });

  return {
    dir,
    store,
    get nodes() {
      return nodes;
    },
    add,
    node: (nodeId) => {
      const node = nodes.find((n) => n.nodeId === nodeId);
      if (!node) throw new Error(`no node ${nodeId} in the cluster (${nodes.map((n) => n.nodeId).join(', ')})`);
      return node;
    },
    verify,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await Promise.allSettled(nodes.map((n) => n.kill9()));
      if (ownsDir) rmSync(dir, { recursive: true, force: true });
    },
  };
};
