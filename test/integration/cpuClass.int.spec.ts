import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/node/logger.js';
import { setCpuClass } from '../../src/projections/host/cpuClass.js';

/** Each thread's nice value and scheduling policy (`/proc/<pid>/task/<tid>/stat` fields 19 and 41; 5 is SCHED_IDLE). */
const threadsOf = (pid: number): Set<string> =>
  new Set(
    readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return [`nice ${fields[19 - 3]} policy ${fields[41 - 3]}`];
      } catch {
        return []; // the thread ended meanwhile
      }
    }),
  );

describe('the read side process CPU class', () => {
  const children: Array<{ kill(): void }> = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill();
  });

  it('puts every thread of a process under SCHED_IDLE and back, keeping nice 19 throughout', async () => {
    // A Node process: V8's and libuv's threads besides the main one.
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(child);
    const pid = child.pid as number;
    await expect.poll(() => readdirSync(`/proc/${pid}/task`).length).toBeGreaterThan(3);

    setCpuClass(pid, 'idle', silentLogger);
    // `chrt` is a process of its own: on a loaded machine it may take a while to run.
    await expect.poll(() => threadsOf(pid), { timeout: 10_000 }).toEqual(new Set(['nice 19 policy 5']));
    setCpuClass(pid, 'background', silentLogger, true);
    await expect.poll(() => threadsOf(pid), { timeout: 10_000 }).toEqual(new Set(['nice 19 policy 0']));
  });
});
