import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { serverMode } from './fourLetterWord.js';
import { DEBIAN_JAVA_DIR, zooKeeperClassPath } from './zooKeeperJars.js';

/**
 * A private ZooKeeper ensemble on loopback ports, run from the Debian `zookeeper` package: one JVM
 * (`QuorumPeerMain`) per server, each with its own zoo.cfg, myid and data directory under `dir`.
 * Used by the integration and chaos tests, and by users through the CLI at the bottom of this file.
 */

export type EnsembleOptions = {
  /** @default 3 */
  servers?: number;
  /**
   * Server i (0-based) listens for clients on basePort + i, for followers on basePort + 100 + i and for
   * leader election on basePort + 200 + i. @default free ports chosen by the OS
   */
  basePort?: number;
  /** Holds every server's zoo.cfg, data and log; removed by stop(). @default a new temporary directory */
  dir?: string;
  /** Servers outlive this process (the CLI); otherwise they are killed when it exits. @default false */
  detached?: boolean;
  /** How long to wait for every server to serve clients. @default 60_000 */
  startTimeoutMs?: number;
  /** Directory holding zookeeper.jar. @default /usr/share/java (or KAIROS_ZK_JAVA_DIR) */
  javaDir?: string;
};

export type ServerPorts = { id: number; client: number; quorum: number; election: number };

export interface Ensemble {
  /** `127.0.0.1:<p1>,127.0.0.1:<p2>,...` — append `/chroot` as needed. */
  readonly connectionString: string;
  readonly dir: string;
  readonly servers: readonly ServerPorts[];
  /** Kills server `i` (0-based) with SIGKILL and waits for it to exit. */
  stopServer(i: number): Promise<void>;
  /** Starts server `i` (0-based) again and waits until it serves clients (which needs a quorum). */
  startServer(i: number): Promise<void>;
  isRunning(i: number): boolean;
  /** Kills every server and removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

/** Kept small so that several ensembles and scheduler nodes fit on a CI machine. */
const JVM_FLAGS = [
  '-Xmx128m',
  '-Xms16m',
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-Djava.net.preferIPv4Stack=true',
  '-Dzookeeper.admin.enableServer=false',
  '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
];
const MAIN_CLASS = 'org.apache.zookeeper.server.quorum.QuorumPeerMain';
const STATE_FILE = 'ensemble.json';

const zooCfg = (dir: string, me: ServerPorts, all: readonly ServerPorts[]): string =>
  [
    // tickTime 500 lets clients negotiate sessions down to 1 s (minSessionTimeout = 2 ticks).
    'tickTime=500',
    'initLimit=20',
    'syncLimit=10',
    'minSessionTimeout=1000',
    'maxSessionTimeout=60000',
    `dataDir=${join(dir, 'data')}`,
    'clientPortAddress=127.0.0.1',
    `clientPort=${me.client}`,
    // Four-letter words are off by default since 3.5; the ensemble probes readiness with `srvr`.
    '4lw.commands.whitelist=*',
    'admin.enableServer=false',
    'autopurge.purgeInterval=0',
    ...all.map((s) => `server.${s.id}=127.0.0.1:${s.quorum}:${s.election}`),
    '',
  ].join('\n');

const serverDir = (dir: string, id: number): string => join(dir, `server${id}`);

export const startEnsemble = async (options: EnsembleOptions = {}): Promise<Ensemble> => {
  const count = options.servers ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new Error(`servers must be a positive integer, got ${count}`);
  const javaDir = options.javaDir ?? process.env['KAIROS_ZK_JAVA_DIR'] ?? DEBIAN_JAVA_DIR;
  const classPath = withLogger(zooKeeperClassPath(javaDir), javaDir);
  const detached = options.detached ?? false;
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'kairos-zk-'));
  mkdirSync(dir, { recursive: true });

  const servers = await allocatePorts(count, options.basePort);
  for (const server of servers) {
    const sdir = serverDir(dir, server.id);
    mkdirSync(join(sdir, 'data'), { recursive: true });
    writeFileSync(join(sdir, 'data', 'myid'), `${server.id}\n`);
    writeFileSync(join(sdir, 'zoo.cfg'), zooCfg(sdir, server, servers));
  }

  const children = new Map<number, ChildProcess>();
  const pids = new Map<number, number>();
  const saveState = (): void =>
    writeFileSync(
      join(dir, STATE_FILE),
      JSON.stringify({ servers: servers.map((s) => ({ ...s, pid: pids.get(s.id) ?? null })) }, null, 2),
    );

  const launch = (server: ServerPorts): ChildProcess => {
    const sdir = serverDir(dir, server.id);
    const log = openSync(join(sdir, 'zookeeper.log'), 'a');
    const child = spawn('java', [...JVM_FLAGS, '-cp', classPath, MAIN_CLASS, join(sdir, 'zoo.cfg')], {
      cwd: sdir,
      detached,
      stdio: ['ignore', log, log],
    });
    if (detached) child.unref();
    children.set(server.id, child);
    if (child.pid !== undefined) pids.set(server.id, child.pid);
    child.once('exit', () => {
      if (children.get(server.id) === child) children.delete(server.id);
    });
    saveState();
    return child;
  };

  const waitServing = async (server: ServerPorts): Promise<void> => {
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      const child = children.get(server.id);
      if (!child || child.exitCode !== null || child.signalCode !== null)
        throw new Error(`ZooKeeper server ${server.id} exited while starting:\n${logTail(dir, server.id)}`);
      if ((await serverMode(server.client)) !== null) return;
      if (Date.now() > deadline)
        throw new Error(
          `ZooKeeper server ${server.id} did not serve clients within ${startTimeoutMs} ms:\n${logTail(dir, server.id)}`,
        );
      await sleep(100);
    }
  };

  const kill = async (id: number): Promise<void> => {
    const child = children.get(id);
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    children.delete(id);
    pids.delete(id);
    saveState();
  };

  const killAllSync = (): void => {
    for (const child of children.values()) child.kill('SIGKILL');
  };
  if (!detached) process.once('exit', killAllSync);

  const at = (i: number): ServerPorts => {
    const server = servers[i];
    if (!server) throw new RangeError(`no server ${i}: the ensemble has servers 0..${servers.length - 1}`);
    return server;
  };

  let stopped = false;
  const ensemble: Ensemble = {
    connectionString: servers.map((s) => `127.0.0.1:${s.client}`).join(','),
    dir,
    servers,
    stopServer: (i) => kill(at(i).id),
    startServer: async (i) => {
      const server = at(i);
      if (!children.has(server.id)) launch(server);
      await waitServing(server);
    },
    isRunning: (i) => children.has(at(i).id),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', killAllSync);
      await Promise.all(servers.map((s) => kill(s.id)));
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    servers.forEach(launch);
    await Promise.all(servers.map(waitServing));
  } catch (err) {
    await ensemble.stop();
    throw err;
  }
  return ensemble;
};

/** Adds slf4j-simple (when present) so that server warnings reach zookeeper.log instead of a NOP logger. */
const withLogger = (classPath: string, javaDir: string): string => {
  const simple = join(javaDir, 'slf4j-simple.jar');
  return existsSync(simple) ? `${classPath}:${simple}` : classPath;
};

const allocatePorts = async (count: number, basePort: number | undefined): Promise<ServerPorts[]> => {
  const ids = Array.from({ length: count }, (_, i) => i);
  if (basePort !== undefined)
    return ids.map((i) => ({
      id: i + 1,
      client: basePort + i,
      quorum: basePort + 100 + i,
      election: basePort + 200 + i,
    }));
  // Every port is held until all are chosen, so the OS cannot hand out one twice.
  const holders = await Promise.all(
    Array.from(
      { length: count * 3 },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = holders.map((h) => {
    const address = h.address();
    if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
    return address.port;
  });
  await Promise.all(holders.map((h) => new Promise((resolve) => h.close(resolve))));
  return ids.map((i) => ({
    id: i + 1,
    client: ports[3 * i] as number,
    quorum: ports[3 * i + 1] as number,
    election: ports[3 * i + 2] as number,
  }));
};

const logTail = (dir: string, id: number): string => {
  try {
    return readFileSync(join(serverDir(dir, id), 'zookeeper.log'), 'utf8')
      .split('\n')
      .slice(-20)
      .join('\n');
  } catch {
    return '(no log)';
  }
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type SavedState = { servers: Array<ServerPorts & { pid: number | null }> };

/** Kills the servers a detached ensemble recorded in `dir` (only processes still running its zoo.cfg). */
export const stopDetachedEnsemble = (dir: string): number => {
  const file = join(dir, STATE_FILE);
  if (!existsSync(file)) throw new Error(`no ensemble in ${dir} (missing ${STATE_FILE})`);
  const state = JSON.parse(readFileSync(file, 'utf8')) as SavedState;
  let killed = 0;
  for (const server of state.servers) {
    if (server.pid === null || !runsConfig(server.pid, join(serverDir(dir, server.id), 'zoo.cfg'))) continue;
    process.kill(server.pid, 'SIGKILL');
    killed++;
  }
  rmSync(dir, { recursive: true, force: true });
  return killed;
};

/** Guards against killing an unrelated process that reused a recorded pid. */
const runsConfig = (pid: number, cfg: string): boolean => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(cfg);
  } catch {
    return false;
  }
};

const usage = `usage: node dist/scripts/zk/ensemble.js start --dir <dir> [--servers 3] [--base-port 2181]
       node dist/scripts/zk/ensemble.js stop --dir <dir>`;

const main = async (argv: string[]): Promise<number> => {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      servers: { type: 'string', default: '3' },
      'base-port': { type: 'string', default: '2181' },
    },
  });
  const [command] = positionals;
  if (!values.dir || (command !== 'start' && command !== 'stop')) {
    console.error(usage);
    return 2;
  }
  if (command === 'stop') {
    const killed = stopDetachedEnsemble(values.dir);
    console.log(`stopped ${killed} ZooKeeper server(s); removed ${values.dir}`);
    return 0;
  }
  if (existsSync(join(values.dir, STATE_FILE))) {
    console.error(`an ensemble is already recorded in ${values.dir}; stop it first`);
    return 1;
  }
  const ensemble = await startEnsemble({
    servers: Number(values.servers),
    basePort: Number(values['base-port']),
    dir: values.dir,
    detached: true,
  });
  console.log(`ZooKeeper ensemble of ${ensemble.servers.length} running; data and logs in ${ensemble.dir}`);
  console.log(`KAIROS_ZK=${ensemble.connectionString}/kairos/local`);
  return 0;
};

const invokedDirectly = (): boolean => {
  const script = process.argv[1];
  return script !== undefined && import.meta.url === pathToFileURL(realpathSync(script)).href;
};

if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
