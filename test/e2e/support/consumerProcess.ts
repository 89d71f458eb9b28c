import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

const FIXTURE = resolve(import.meta.dirname, '../fixtures/consumer.mjs');

export type ConsumerLine = {
  consumer: string;
  event: 'ready' | 'received' | 'handled' | 'failing';
  fireId?: string;
  attempt?: number;
  taskId?: string;
};

export type ConsumerProcess = {
  id: string;
  child: ChildProcess;
  lines: ConsumerLine[];
  /** Resolves when a line matching `predicate` has been printed. */
  waitFor(predicate: (line: ConsumerLine) => boolean, timeoutMs?: number): Promise<ConsumerLine>;
  kill(signal: NodeJS.Signals): Promise<void>;
};

/** A subscriber service as its own OS process (fixtures/consumer.mjs over the built SDK). */
export const startConsumer = async (options: {
  /** A node (connected mode), or with `store` an EventStoreDB URL (direct mode). */
  url?: string;
  store?: string;
  group: string;
  topics: string[];
  id: string;
  mode?: 'ok' | 'slow' | 'fail-before';
  env?: Record<string, string>;
}): Promise<ConsumerProcess> => {
  const child = spawn(process.execPath, [FIXTURE], {
    env: {
      ...process.env,
      ...(options.store ? { KAIROS_STORE: options.store } : { KAIROS_URL: options.url ?? '' }),
      GROUP: options.group,
      TOPICS: options.topics.join(','),
      CONSUMER_ID: options.id,
      MODE: options.mode ?? 'ok',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: ConsumerLine[] = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffer.slice(0, nl)) as ConsumerLine);
      buffer = buffer.slice(nl + 1);
    }
    for (const w of waiters) w();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const waitFor = (predicate: (line: ConsumerLine) => boolean, timeoutMs = 20_000) =>
    new Promise<ConsumerLine>((ok, fail) => {
      const check = () => {
        const found = lines.find(predicate);
        if (found) {
          waiters.delete(check);
          clearTimeout(timer);
          ok(found);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        fail(
          new Error(
            `consumer ${options.id}: no matching line within ${timeoutMs} ms; saw ${JSON.stringify(lines.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  await waitFor((l) => l.event === 'ready');
  return {
    id: options.id,
    child,
    lines,
    waitFor,
    kill: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
};
