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
 * those are left out, so every stream in the file is one run of consecutive revisions. A truncation
 * while the export runs can make a stream jump ahead, or take its events up to the head away altogether,
 * with the capture that preceded it written after the head: such streams are completed at the end, up to
 * that capture, so the file holds every task and the import can prove each jump.
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
    const runs = new Runs();
    let after = 0n;
    let events = 0;
    const write = async (lines: readonly RecordedEvent[]): Promise<void> => {
      let text = '';
      for (const e of lines) {
        text += `${JSON.stringify(logLineOf(e))}\n`;
        runs.add(e);
      }
      if (!out.write(text)) await drained(out);
      events += lines.length;
    };
    while (after < head) {
      if (failed) throw failed;
      const page = (await store.readAll({ after, maxCount: pageSize })).filter((e) => e.position <= head);
      if (page.length === 0) break;
      await starts.learn(page);
      await write(page.filter((e) => starts.keeps(e)));
      after = (page[page.length - 1] as RecordedEvent).position;
      options.onProgress?.({ events, position: after, head });
    }
    // Captures written after the head by truncations that ran meanwhile: complete each stream they cut.
    const tail = await store.headPosition();
    for (let from = head; from < tail;) {
      const page = (await store.readAll({ after: from, maxCount: pageSize })).filter((e) => e.position <= tail);
      if (page.length === 0) break;
      for (const capture of page) {
        if (capture.type !== CAPTURE || !runs.needsCapture(capture.stream)) continue;
        const next = runs.next(capture.stream);
        const rest = await store.readStream(capture.stream, {
          ...(next === undefined ? {} : { fromRevision: next }),
          maxCount: Number(capture.revision - (next ?? 0n)) + 1,
        });
        if (failed) throw failed;
        await write(rest.filter((e) => e.revision <= capture.revision && (next === undefined || e.revision >= next)));
      }
      from = (page[page.length - 1] as RecordedEvent).position;
    }
    if (failed) throw failed;
    return { events, head };
  } finally {
    out.off('error', onError);
  }
};

/** The event a truncation leaves before its cut (domain/task/capture.ts): what proves a jump. */
const CAPTURE = 'TaskStateCaptured';

/** Per stream written: the next revision it expects, and whether a start or jump still wants a capture. */
class Runs {
  readonly #runs = new Map<string, { next: bigint; unproven: boolean }>();

  add(e: RecordedEvent): void {
    const run = this.#runs.get(e.stream);
    const jumped = run === undefined ? e.revision > 0n : e.revision !== run.next;
    this.#runs.set(e.stream, {
      next: e.revision + 1n,
      unproven: e.type === CAPTURE ? false : jumped || (run?.unproven ?? false),
    });
  }

  /** Never written (its events were all cut), or written from a start or jump no capture followed. */
  needsCapture(stream: string): boolean {
    return this.#runs.get(stream)?.unproven ?? true;
  }

  next(stream: string): bigint | undefined {
    return this.#runs.get(stream)?.next;
  }
}

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
