import { Worker } from 'node:worker_threads';
import { workerEntry } from './workerEntry.js';
import { youngGenerationLimits } from './youngGeneration.js';

/** How a thread's messages settle its task; only the first settling counts. */
export type ThreadAnswer<Result> = { resolve(result: Result): void; reject(err: unknown): void };

/**
 * Runs the script `name` beside `here` (its `import.meta.url`) in a worker thread with the young
 * generation a fold of the log needs, until it answers: `onMessage` sees every message and settles
 * the task through `answer`; an error, or an exit before an answer, rejects it (`what` names the
 * thread). The thread is never terminated (better-sqlite3 aborts the process when a thread is
 * terminated during a SQLite call, see threadWriter.ts): it ends by itself once it has answered.
 */
export const foldInThread = <Message, Result>(options: {
  here: string;
  name: string;
  data: unknown;
  what: string;
  onMessage: (message: Message, answer: ThreadAnswer<Result>) => void;
}): { worker: Worker; answered: Promise<Result> } => {
  const { entry, eval: isCode } = workerEntry(options.here, options.name);
  const worker = new Worker(entry, { workerData: options.data, eval: isCode, resourceLimits: youngGenerationLimits });
  const answered = new Promise<Result>((resolve, reject) => {
    let settled = false;
    const once =
      <A>(settle: (a: A) => void) =>
      (a: A): void => {
        if (settled) return;
        settled = true;
        settle(a);
      };
    const answer: ThreadAnswer<Result> = { resolve: once(resolve), reject: once(reject) };
    worker.on('message', (message: Message) => options.onMessage(message, answer));
    worker.on('error', answer.reject);
    worker.on('exit', (code) => answer.reject(new Error(`${options.what} exited (code ${code}) without an answer`)));
  });
  return { worker, answered };
};
