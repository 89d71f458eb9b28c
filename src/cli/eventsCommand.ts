import type { Command } from 'commander';
import type { eventJsonOf } from '../api/eventRoutes.js';
import type { ApiClient } from './apiClient.js';
import { openDirectStore, throughNodeOrStore } from './directStore.js';

type EventJson = ReturnType<typeof eventJsonOf>;
type EventsFlags = { from: string; limit?: string; format: string; store?: string; dataDir?: string };

const PAGE = 1_000;

const print = (events: readonly EventJson[], format: string): void => {
  for (const e of events) {
    if (format === 'ndjson') process.stdout.write(`${JSON.stringify(e)}\n`);
    else
      process.stdout.write(
        `${e.position}\t${e.time}\t${e.stream}@${e.revision}\t${e.type}\t${JSON.stringify(e.data)}\n`,
      );
  }
};

/** Pages through the log via the API, or straight from the embedded store when the node is down. */
export const registerEvents = (program: Command, client: () => ApiClient): void => {
  program
    .command('events')
    .description('print the event log (reads the embedded store directly when the node is down)')
    .option('--from <position>', 'first position', '0')
    .option('--limit <n>', 'at most this many events')
    .option('--format <format>', 'ndjson | text', 'text')
    .option('--store <url>', 'read this store directly, not through a node (KAIROS_STORE when no node answers)')
    .option('--data-dir <dir>', 'read the embedded store of this data directory directly (KAIROS_DATA_DIR)')
    .action(async (flags: EventsFlags) => {
      if (!['ndjson', 'text'].includes(flags.format))
        throw new Error(`--format must be ndjson or text, got ${flags.format}`);
      const from = Number(flags.from);
      if (!Number.isSafeInteger(from) || from < 0)
        throw new Error(`--from must be a position (a whole number >= 0), got ${flags.from}`);
      let left = flags.limit === undefined ? Number.POSITIVE_INFINITY : Number(flags.limit);
      if (!(left > 0)) throw new Error(`--limit must be a positive number, got ${flags.limit}`);
      const viaNode = async (): Promise<void> => {
        const api = client();
        let next = from;
        while (left > 0) {
          const page = api.get<{ events: EventJson[]; next: number }>(
            `/api/events?from=${next}&limit=${Math.min(PAGE, left)}`,
          );
          // Once something is printed, a node that goes away must not make the store print it again.
          const { body } =
            next === from ? await page : await page.catch((err: Error) => Promise.reject(new Error(err.message)));
          print(body.events, flags.format);
          left -= body.events.length;
          if (body.events.length === 0) return;
          next = body.next;
        }
      };
      const viaStore = async (): Promise<void> => {
        const { eventJsonOf } = await import('../api/eventRoutes.js');
        const store = await openDirectStore(flags);
        try {
          let after = from > 0 ? BigInt(from - 1) : 0n;
          while (left > 0) {
            const events = await store.readAll({ after, maxCount: Math.min(PAGE, left) });
            if (events.length === 0) break;
            print(events.map(eventJsonOf), flags.format);
            left -= events.length;
            after = (events.at(-1) as (typeof events)[number]).position;
          }
        } finally {
          await store.close();
        }
      };
      await throughNodeOrStore(flags, viaNode, viaStore);
    });
};
