import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from '../cluster/localCluster.js';
import { sleep } from './fixtures.js';
import { childrenOf, cpuMs } from './userProcesses.js';

/** Debian's package (Redis 7): the bench runs the server a user would install beside BullMQ. */
const REDIS_SERVER = '/usr/bin/redis-server';

export type RedisServer = {
  port: number;
  pid: number;
  /** CPU time used so far by the server and its forked children (AOF rewrites), in ms. */
  cpuMs(): number;
  /** SIGTERM (Redis fsyncs its AOF and exits; no RDB is saved), SIGKILL if that takes over 10 s. */
  stop(): Promise<void>;
};

/**
 * A redis-server of the benchmark's own on a free loopback port, its files in `dir`: AOF on with
 * `appendfsync everysec` (issue 10), no RDB snapshots. Resolves once it answers PING.
 */
export const startRedisServer = async (dir: string): Promise<RedisServer> => {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: apt-get install -y redis-server`);
  for (let attempt = 1; ; attempt++) {
    const server = spawnServer(await freePort(), dir);
    try {
      await untilPong(server, 10_000);
      return server.handle;
    } catch (err) {
      await server.handle.stop();
      // freePort's port may be taken again before the server binds it.
      if (attempt >= 3 || !(err as Error).message.includes('Address already in use')) throw err;
    }
  }
};

type Spawned = { handle: RedisServer; child: ChildProcess; output: () => string };

const spawnServer = (port: number, dir: string): Spawned => {
  const child = spawn(
    REDIS_SERVER,
    // `--save ''` turns snapshots off; the log goes to stdout, kept for error messages.
    [
      ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no'],
      ...['--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A bench that dies between start and stop leaves no server behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const pid = child.pid ?? -1;
  const handle: RedisServer = {
    port,
    pid,
    cpuMs: () => ownAndReapedCpuMs(pid) + childrenOf(pid).reduce((sum, c) => sum + cpuMs(c), 0),
    stop: async () => {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const late = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(late);
    },
  };
  return { handle, child, output: () => output };
};

const untilPong = async ({ handle, child, output }: Spawned, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(
        `redis-server exited (${child.exitCode ?? child.signalCode}) before it answered PING:\n${output()}`,
      );
    if (await answersPing(handle.port)) return;
    await sleep(50);
  }
  throw new Error(`redis-server did not answer PING in ${timeoutMs / 1000} s:\n${output()}`);
};

/** One PING over a fresh connection; false on any error, a `-LOADING` reply or no reply within 1 s. */
const answersPing = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });

/** utime + stime + cutime + cstime: a child's time joins cutime/cstime once the parent has reaped it. */
const ownAndReapedCpuMs = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14–17 of stat (11–14 after the name), in USER_HZ = 100 ticks/s.
    return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]) * 10, 0);
  } catch {
    return 0;
  }
};
