import type { Writable } from 'node:stream';
import type { EventStore, RecordedEvent } from '../eventStore.js';
import { logLineOf } from './logLine.js';

export type ExportProgress = {
  events: number;
  /** Position of the last event written. */
  position: bigint;
  /** The head when the export started: the export ends there. */
  head: bigint;
};

export type ExportOptions = {
  /** Events read per page. @default 1000 */
  pageSize?: number;
  onProgress?: (progress: ExportProgress) => void;
};

export type ExportResult = { events: number; head: bigint };

/**
 * Writes the whole log to `out` as NDJSON (see logLine.ts), in log order. The export ends at the head
 * the log had when it started, so a node appending meanwhile still yields one consistent prefix of
 * the log. Waits for `out` to drain when it is full, so a slow pipe holds the reads back. Does not end
 * `out`.
 *
 * A truncated stream (retention) is exported from where its stream reads start, at its real revisions:
 * EventStoreDB's `$all` still shows truncated events until a scavenge (some of them, after one), and
 * those are left out, so every stream in the file is one run of consecutive revisions. (A truncation
 * while the export runs can still make a stream jump ahead; the import keeps it from the jump.)
 */
export const exportLog = async (
  store: EventStore,
  out: Writable,
  options: ExportOptions = {},
): Promise<ExportResult> => {
  const pageSize = options.pageSize ?? 1_000;
  // A write error (a full disk, a closed pipe) is emitted, not thrown: keep it and stop at the next page.
  let failed: Error | undefined;
  const onError = (e: Error): void => {
    failed ??= e;
  };
  out.on('error', onError);
  try {
    const head = await store.headPosition();
    const starts = new StreamStarts(store);
    let after = 0n;
    let events = 0;
    while (after < head) {
      if (failed) throw failed;
      const page = (await store.readAll({ after, maxCount: pageSize })).filter((e) => e.position <= head);
      if (page.length === 0) break;
      await starts.learn(page);
      let text = '';
      let written = 0;
      for (const e of page) {
        if (!starts.keeps(e)) continue;
        text += `${JSON.stringify(logLineOf(e))}\n`;
        written++;
      }
      if (!out.write(text)) await drained(out);
      events += written;
      after = (page[page.length - 1] as RecordedEvent).position;
      options.onProgress?.({ events, position: after, head });
    }
    if (failed) throw failed;
    return { events, head };
  } finally {
    out.off('error', onError);
  }
};

/** Where each stream's reads start (its first revision not truncated), asked once per stream. */
class StreamStarts {
  readonly #first = new Map<string, bigint | null>();
  constructor(private readonly store: EventStore) {}

  /** Looks up the streams of a page not seen before, together. */
  async learn(page: readonly RecordedEvent[]): Promise<void> {
    const unknown = [...new Set(page.map((e) => e.stream))].filter((stream) => !this.#first.has(stream));
    const firsts = await Promise.all(
      unknown.map(async (stream) => (await this.store.readStream(stream, { maxCount: 1 }))[0]?.revision ?? null),
    );
    unknown.forEach((stream, i) => this.#first.set(stream, firsts[i] as bigint | null));
  }

  keeps(e: RecordedEvent): boolean {
    const first = this.#first.get(e.stream);
    return first !== undefined && first !== null && e.revision >= first;
  }
}

const drained = (out: Writable): Promise<void> =>
  new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      out.off('drain', onDrain);
      out.off('error', done);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => done();
    out.once('drain', onDrain);
    out.once('error', done);
  });
