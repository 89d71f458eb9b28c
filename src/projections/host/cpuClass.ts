import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';

/**
 * How the read side's process shares the CPU with the node (Linux):
 * - `background`: every thread at nice 19. It gets ~1.5 % of a core another process wants, so it
 *   still moves when something else keeps the CPUs busy; but a node thread waking on a core it runs
 *   on may wait for the scheduler's next turn.
 * - `idle`: `SCHED_IDLE`, only what nobody else wants: a waking node thread preempts it at once. On a
 *   saturated 2-vCPU machine (10,000 fires/s) that took the firing lateness p99 from 1.4 s to 0.4–0.7 s
 *   at the same read-side throughput (docs/architecture.md, "The read side runs in a child process") —
 *   but beside any other busy process the read side gets nothing, so it is used only while the node
 *   itself is busy.
 */
export type CpuClass = 'background' | 'idle';

const NICENESS = 19;

/** `chrt` (util-linux) sets a scheduling policy on every thread of a process; Node has no call for it. */
const chrt = ((): string | null => {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const file = join(dir, 'chrt');
    if (dir && existsSync(file)) return file;
  }
  return null;
})();

/**
 * Why `idle` cannot be used here, or null. Leaving `SCHED_IDLE` again needs what lowering the nice
 * value does (CAP_SYS_NICE, or RLIMIT_NICE allowing nice 19: a soft limit ≥ 1): without it the read
 * side would stay there for good, and starve beside any busy process once the node is calm again.
 */
const idleUnavailable = ((): string | null => {
  if (chrt === null) return 'chrt (util-linux) is not installed';
  if (process.getuid?.() === 0) return null;
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max nice priority'));
    const soft = Number(line?.trim().split(/\s+/)[3]);
    return soft >= 1 ? null : 'not root, and RLIMIT_NICE does not allow leaving SCHED_IDLE again (ulimit -e 1 or more)';
  } catch {
    return 'cannot read /proc/self/limits';
  }
})();
let warned = false;

/**
 * Puts every thread of `pid` in `cpuClass` (threads started later inherit it from the thread that
 * starts them). Nice 19 holds in both classes, so it is there again when `idle` is left. `leavingIdle`:
 * the process may be under `SCHED_IDLE` now; a new one starts outside it, and needs no `chrt` for
 * `background`.
 */
export const setCpuClass = (pid: number, cpuClass: CpuClass, log: Logger, leavingIdle = false): void => {
  renice(pid, log);
  if (cpuClass === 'idle' && idleUnavailable !== null) {
    if (!warned) log.info(`the read side stays at nice 19 while the node is busy: ${idleUnavailable}`);
    warned = true;
    return;
  }
  if (chrt === null || (cpuClass === 'background' && !leavingIdle)) return;
  execFile(
    chrt,
    [cpuClass === 'idle' ? '--idle' : '--other', '--all-tasks', '--pid', '0', String(pid)],
    (err, _out, stderr) => {
      // A process that exited meanwhile has nothing to set.
      if (err && !/No such process/i.test(stderr)) log.warn({ err, stderr }, "could not set the read side's CPU class");
    },
  );
};

/** `setpriority` acts on one thread on Linux: every thread of the process, from `/proc`. */
const renice = (pid: number, log: Logger): void => {
  let threads: number[];
  try {
    threads = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    threads = [pid]; // no /proc (not Linux): the process as the OS sees it
  }
  for (const thread of threads) {
    try {
      setPriority(thread, NICENESS);
    } catch (err) {
      // A thread that ended meanwhile; anything else is worth a word.
      if ((err as { info?: { code?: string } }).info?.code !== 'ESRCH')
        log.warn({ err }, 'could not lower the read side process priority');
    }
  }
};
