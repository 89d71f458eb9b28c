import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { IllegalStateError } from '../../domain/errors/index.js';

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * One process writes a read database at a time (a node's read side, or `kairos replay` while the node
 * is down): two would each switch generations under the other. `<file>.lock` holds the writer's pid;
 * a lock left by a process that is gone (kill -9) is taken over.
 */
export const lockReadDb = (file: string): { release(): void } => {
  if (file === ':memory:') return { release: () => {} };
  const lock = `${file}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return { release: () => rmSync(lock, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(lock, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder))
        throw new IllegalStateError(
          `the read database ${file} is in use by process ${holder} (a running node's read side?); stop it, or ask the node (kairos replay talks to it when it runs)`,
          { file, pid: holder },
        );
      rmSync(lock, { force: true });
    }
  }
  throw new IllegalStateError(`could not lock the read database ${file}`, { file });
};
