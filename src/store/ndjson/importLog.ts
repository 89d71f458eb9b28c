import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ErrorCode, KairosError, isKairosError } from '../../../domain/errors/index.js';
import type { EventData, EventStore, ExpectedRevision, StreamAppend } from '../eventStore.js';
import { ImportConflictError, LogLineError, parseLogLine, type ParsedLogLine } from './logLine.js';

export type ImportProgress =
  /** Checking the whole file before anything is written; `done`/`total` in bytes. */
  | { phase: 'checking'; done: number; total: number }
  /** Appending; `done`/`total` in events. */
  | { phase: 'importing'; done: number; total: number };

export type ImportOptions = {
  /** Events read ahead before their appends go out; the next chunk is read while one is written. @default 20000 */
  chunkSize?: number;
  /** Most events in one `appendBatch` call. @default 5000 */
  eventsPerCall?: number;
  /** `appendBatch` calls in flight at once. @default 4 */
  concurrency?: number;
  onProgress?: (progress: ImportProgress) => void;
};

export type ImportResult = {
  /** Events in the file. */
  events: number;
  streams: number;
  /** Events appended by this import. */
  written: number;
  /** Events that were already in the target (same id at the same revision): a repeated import. */
  skipped: number;
  /**
   * Events not imported because their stream jumps ahead later in the file: the source truncated it
   * (retention) while it was being exported, so they are older than what the stream keeps.
   */
  dropped: number;
};

// One append stays well under EventStoreDB's default maximum append size (1 MiB), measured on the
// lines' UTF-8 size, which is close to the size of data and metadata.
const MAX_APPEND_EVENTS = 500;
const MAX_APPEND_BYTES = 512 * 1024;

/** Consecutive events of one stream, sent as one append. */
type Batch = { stream: string; first: number; events: EventData[]; lines: number[]; bytes: number };

/**
 * Imports an NDJSON export (see logLine.ts) into `store`, keeping each event's id, stream and revision:
 * each event is appended at its original revision (expected revision = revision − 1). First the whole
 * file is checked (every line valid, each stream's revisions consecutive), so a bad file writes nothing.
 * A truncated stream (retention) starts in the file after revision 0: the target stream is started at
 * that revision (`startStreamAt`), so it ends with the same revisions and reads start where they did.
 * A stream may also jump ahead in the file (truncated while it was exported): it is imported from its
 * last jump, and the lines before it are counted as `dropped`.
 * Then it is appended in chunks: within a chunk each stream's events go in one append per batch, many
 * streams per `appendBatch` call and several calls in flight; the next chunk starts when the previous
 * one is stored, so each stream's order is exact, while the order between streams is kept only chunk
 * by chunk (the target assigns its own positions).
 *
 * Importing the same file again changes nothing: events already in the target with the same id at the
 * same revision are skipped (the store's idempotent re-append, or, for a partly present batch, a read of
 * the stream). A different event at a revision is an ImportConflictError, and nothing after it in that
 * stream is written; the import stops after the appends under way.
 */
export const importLog = async (
  store: EventStore,
  file: string,
  options: ImportOptions = {},
): Promise<ImportResult> => {
  const { events, streams, starts, dropped } = await checkFile(file, options.onProgress);
  const headBefore = await store.headPosition();
  const importer = new ChunkImporter(store, headBefore, events - dropped, starts, options);
  await importer.run(file, options.chunkSize ?? 20_000);
  return { events, streams, written: importer.written, skipped: importer.skipped, dropped };
};

const lines = async function* (
  file: string,
  onBytes?: (bytes: number) => void,
): AsyncGenerator<{ text: string; line: number }> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const reader = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of reader) {
      line++;
      // Blank lines (an editor's trailing newline) carry no event.
      if (text.trim() === '') continue;
      onBytes?.(input.bytesRead);
      yield { text, line };
    }
  } finally {
    reader.close();
    input.destroy();
  }
};

/**
 * A stream's lines so far: the current run of consecutive revisions starts at `start`. A run that does
 * not start at revision 0 is legitimate only where retention truncated the stream, which it does only
 * before a `TaskStateCaptured`: `unproven` is the refusal to raise unless the run holds one.
 */
type Run = { revision: number; line: number; start: number; lines: number; unproven: LogLineError | null };

/**
 * Pass 1: every line valid, each stream's revisions consecutive in file order, except for a start
 * after 0 or a jump ahead where retention truncated the stream. `starts`: where each stream that does
 * not start at 0 is imported from (after its last jump).
 */
const checkFile = async (
  file: string,
  onProgress: ImportOptions['onProgress'],
): Promise<{ events: number; streams: number; starts: Map<string, number>; dropped: number }> => {
  const total = statSync(file).size;
  const runs = new Map<string, Run>();
  let events = 0;
  let dropped = 0;
  let reported = 0;
  const onBytes = (done: number): void => {
    // Reported per 64 KiB read (the reader's chunk), not per line.
    if (done === reported) return;
    reported = done;
    onProgress?.({ phase: 'checking', done, total });
  };
  for await (const { text, line } of lines(file, onProgress && onBytes)) {
    const e = parseLogLine(text, line);
    const previous = runs.get(e.stream);
    const expected = previous === undefined ? 0 : previous.revision + 1;
    const notExpected = (): LogLineError =>
      new LogLineError(line, [
        {
          path: 'revision',
          message:
            previous === undefined
              ? `must be 0: stream '${e.stream}' starts here, and a stream starts later only where retention truncated it, before a TaskStateCaptured`
              : `must be ${expected}: the previous event of stream '${e.stream}' (line ${previous.line}) is at revision ${previous.revision}` +
                (e.revision > expected
                  ? ' (a jump ahead is only where retention truncated it, before a TaskStateCaptured)'
                  : ''),
        },
      ]);
    if (previous !== undefined && e.revision < expected) throw notExpected();
    events++;
    let run: Run;
    if (e.revision === expected && previous !== undefined) {
      run = { ...previous, revision: e.revision, line, lines: previous.lines + 1 };
    } else {
      // A new run: the stream's first line, or a jump ahead (truncated during the export).
      dropped += previous?.lines ?? 0;
      run = {
        revision: e.revision,
        line,
        start: e.revision,
        lines: 1,
        unproven: e.revision > 0 ? notExpected() : null,
      };
    }
    if (e.type === 'TaskStateCaptured') run.unproven = null;
    runs.set(e.stream, run);
  }
  const starts = new Map<string, number>();
  for (const [stream, run] of runs) {
    if (run.unproven) throw run.unproven;
    if (run.start > 0) starts.set(stream, run.start);
  }
  return { events, streams: runs.size, starts, dropped };
};

/** Pass 2: chunk by chunk, each written while the next is read. */
class ChunkImporter {
  written = 0;
  skipped = 0;
  private failure: Error | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly headBefore: bigint,
    private readonly total: number,
    /** Where a stream is imported from, when not from revision 0. */
    private readonly starts: ReadonlyMap<string, number>,
    private readonly options: ImportOptions,
  ) {}

  async run(file: string, chunkSize: number): Promise<void> {
    let chunk = new Map<string, Batch[]>();
    let inChunk = 0;
    let writing: Promise<void> = Promise.resolve();
    try {
      for await (const { text, line } of lines(file)) {
        if (this.failure) break;
        this.add(chunk, parseLogLine(text, line), line, Buffer.byteLength(text));
        if (++inChunk < chunkSize) continue;
        await writing;
        writing = this.writeChunk(chunk);
        chunk = new Map();
        inChunk = 0;
      }
    } finally {
      // Even when reading fails: the caller closes the store once this returns.
      await writing;
    }
    if (!this.failure) await this.writeChunk(chunk);
    if (this.failure) throw this.failure;
  }

  private add(chunk: Map<string, Batch[]>, e: ParsedLogLine, line: number, bytes: number): void {
    if (e.revision < (this.starts.get(e.stream) ?? 0)) return;
    let batches = chunk.get(e.stream);
    if (batches === undefined) chunk.set(e.stream, (batches = []));
    let batch = batches[batches.length - 1];
    if (batch === undefined || batch.events.length >= MAX_APPEND_EVENTS || batch.bytes + bytes > MAX_APPEND_BYTES) {
      batch = { stream: e.stream, first: e.revision, events: [], lines: [], bytes: 0 };
      batches.push(batch);
    }
    batch.events.push({
      id: e.id,
      type: e.type,
      data: e.data,
      ...(e.metadata === undefined ? {} : { metadata: e.metadata }),
    });
    batch.lines.push(line);
    batch.bytes += bytes;
  }

  /** Round k sends every stream's k-th batch, so a stream's batches go one after the other. */
  private async writeChunk(chunk: Map<string, Batch[]>): Promise<void> {
    const lanes = [...chunk.values()];
    for (let round = 0; !this.failure; round++) {
      const batches = lanes.flatMap((lane) => lane.slice(round, round + 1));
      if (batches.length === 0) return;
      await this.sendAll(batches);
    }
  }

  /** Packs the batches into `appendBatch` calls and keeps up to `concurrency` of them in flight. */
  private async sendAll(batches: readonly Batch[]): Promise<void> {
    const perCall = this.options.eventsPerCall ?? 5_000;
    const calls: Batch[][] = [];
    let call: Batch[] = [];
    let size = 0;
    for (const batch of batches) {
      if (call.length > 0 && size + batch.events.length > perCall) {
        calls.push(call);
        call = [];
        size = 0;
      }
      call.push(batch);
      size += batch.events.length;
    }
    if (call.length > 0) calls.push(call);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < calls.length && !this.failure) await this.send(calls[next++] as Batch[]);
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency ?? 4, calls.length) }, worker));
  }

  private async send(call: readonly Batch[]): Promise<void> {
    try {
      await Promise.all(call.map((b) => this.startStream(b)));
      const appends = call.map((b): StreamAppend => ({
        stream: b.stream,
        events: b.events,
        expectedRevision: expectedBefore(b.first),
      }));
      const results = await this.store.appendBatch(appends);
      await Promise.all(
        call.map(async (batch, i) => {
          const outcome = results[i];
          if (outcome?.ok) this.count(batch.events.length, outcome.result.position > this.headBefore);
          // Refused: the stream holds some of these events already, or others; sorted out event by event.
          else await this.reconcile(batch);
        }),
      );
    } catch (e) {
      this.failure ??= e as Error;
    }
  }

  /** Before the first batch of a stream the file starts after revision 0: a stream in the target that starts there too. */
  private async startStream(batch: Batch): Promise<void> {
    if (batch.first === 0 || batch.first !== this.starts.get(batch.stream)) return;
    // Already there (a repeated import): its appends decide, as for any other stream.
    if ((await this.store.streamRevision(batch.stream)) !== undefined) return;
    await this.store.startStreamAt(batch.stream, BigInt(batch.first));
  }

  /** A batch the store refused as a whole: skip the events already there, fail on a different one, append the rest. */
  private async reconcile(batch: Batch): Promise<void> {
    const { stream, first, events, lines } = batch;
    const last = await this.store.streamRevision(stream);
    const stored = await this.store.readStream(stream, { fromRevision: BigInt(first), maxCount: events.length });
    const storedAt = new Map(stored.map((s) => [Number(s.revision), s.id]));
    let present = 0;
    while (present < events.length && last !== undefined && first + present <= Number(last)) {
      const id = (events[present] as EventData).id;
      const there = storedAt.get(first + present);
      // Absent below the stream's end: retention truncated it in the target since it was imported.
      if (there !== undefined && there !== id.toLowerCase())
        throw new ImportConflictError(stream, first + present, lines[present] as number, id, there);
      present++;
    }
    this.count(present, false);
    const rest = events.slice(present);
    if (rest.length === 0) return;
    const from = first + present;
    try {
      await this.store.appendToStream(stream, rest, { expectedRevision: expectedBefore(from) });
    } catch (e) {
      throw new KairosError(
        isKairosError(e) ? e.code : ErrorCode.internal,
        `cannot import stream '${stream}' from revision ${from} (line ${lines[present]}): ${(e as Error).message}`,
        { stream, revision: from, line: lines[present] as number },
        { cause: e },
      );
    }
    this.count(rest.length, true);
  }

  private count(events: number, written: boolean): void {
    if (written) this.written += events;
    else this.skipped += events;
    this.options.onProgress?.({ phase: 'importing', done: this.written + this.skipped, total: this.total });
  }
}

const expectedBefore = (revision: number): ExpectedRevision => (revision === 0 ? 'no_stream' : BigInt(revision - 1));
