import { open, readFile, rename } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { TaskState } from '../../domain/task/state.js';
import type { EventStore } from '../store/eventStore.js';

/**
 * A node's task records saved beside the log, so a start folds only the log's tail (issue 10, goal 6).
 * One file: one line per record, then a header line — format version, the log position the replay
 * starts after, the last event the records were followed to (its stream, revision, position and id: a
 * snapshot of another log, or of this one restored from an older backup, does not find it there), the
 * highest epoch, the number of records and a CRC-32 of the body. Written a slice at a time to a
 * temporary file, synced, then renamed over the last one: a crash while writing leaves the previous one.
 */

/** `[taskId, revision, lastCapture, retentionCheckedAt, state]`: a TaskRecord as plain data. */
export type SnapshotRecord = [
  taskId: string,
  revision: string,
  lastCapture: number,
  retentionCheckedAt: number,
  state: TaskState,
];

export type StateSnapshot = {
  /** Every record includes the log up to here: the replay folds what comes after. */
  position: bigint;
  maxEpoch: number;
  records: SnapshotRecord[];
};

/** The last event the records were followed to when they were written. */
type Anchor = { stream: string; revision: string; position: string; id: string };
type Header = { v: 1; position: string; anchor: Anchor; maxEpoch: number; tasks: number; crc32: number };

/**
 * 1: the header above. Bump it when `TaskState` or what `evolve` makes of an event changes: a snapshot
 * of another shape is then replayed over instead of restored.
 */
const VERSION = 1;

/** Records serialized and written per turn of the event loop: a snapshot of 100,000 tasks never holds a fire up for long. */
const SLICE = 2_000;

/** The last event of the log the records were followed to when they were written: the log must hold it. */
export type LastFollowed = { stream: string; revision: bigint };

export const writeSnapshot = async (
  file: string,
  store: EventStore,
  snapshot: {
    position: bigint;
    maxEpoch: number;
    records: Iterable<SnapshotRecord>;
    /** Asked once every record is written. */
    lastFollowed: () => LastFollowed | null;
  },
): Promise<'written' | 'nothing to save'> => {
  // One node per data directory: a fixed name, so a crash mid-write leaves no pile of them.
  const temporary = `${file}.tmp`;
  const handle = await open(temporary, 'w');
  let written = false;
  try {
    let crc = 0;
    let tasks = 0;
    let lines: string[] = [];
    const flush = async (): Promise<void> => {
      const chunk = Buffer.from(lines.join(''));
      lines = [];
      crc = crc32(chunk, crc);
      await handle.write(chunk);
    };
    for (const record of snapshot.records) {
      lines.push(`${JSON.stringify(record)}\n`);
      if (++tasks % SLICE === 0) await flush();
    }
    await flush();
    const anchor = await anchorOf(store, snapshot.lastFollowed());
    if (!anchor) return 'nothing to save';
    // The header is the last line: the body's checksum and anchor are known only once it is written.
    const header: Header = {
      v: VERSION,
      position: String(snapshot.position),
      anchor,
      maxEpoch: snapshot.maxEpoch,
      tasks,
      crc32: crc,
    };
    await handle.write(`${JSON.stringify(header)}\n`);
    await handle.sync();
    written = true;
  } finally {
    await handle.close();
  }
  if (written) await rename(temporary, file);
  return written ? 'written' : 'nothing to save';
};

/**
 * The snapshot in `file` if it can be trusted for this log; otherwise why not (none yet, damaged, of
 * another shape, of another log or of this one before it was restored): the caller then replays the
 * whole log.
 */
export const readSnapshot = async (
  file: string,
  store: EventStore,
): Promise<{ ok: true; snapshot: StateSnapshot } | { ok: false; problem: string }> => {
  let content: Buffer;
  try {
    content = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, problem: 'no snapshot yet' };
    throw err;
  }
  // The header is the last line (written once the body was).
  const headerStart = content.lastIndexOf(0x0a, content.length - 2) + 1;
  let header: Header;
  try {
    header = JSON.parse(content.toString('utf8', headerStart)) as Header;
  } catch {
    return { ok: false, problem: 'its header is not JSON (a partial write?)' };
  }
  if (header.v !== VERSION) return { ok: false, problem: `format version ${header.v}, not ${VERSION}` };
  const body = content.subarray(0, headerStart);
  if (crc32(body) !== header.crc32) return { ok: false, problem: 'its body does not match its checksum' };
  if (!(await holds(store, header.anchor)))
    return {
      ok: false,
      problem: `the log does not hold its last event (${header.anchor.stream}@${header.anchor.revision}, position ${header.anchor.position}): a snapshot of another log, or of this one before a restore`,
    };
  const records: SnapshotRecord[] = [];
  for (let start = 0; start < body.length;) {
    const end = body.indexOf(0x0a, start);
    records.push(JSON.parse(body.toString('utf8', start, end)) as SnapshotRecord);
    start = end + 1;
  }
  if (records.length !== header.tasks) return { ok: false, problem: 'its body holds a different number of tasks' };
  return { ok: true, snapshot: { position: BigInt(header.position), maxEpoch: header.maxEpoch, records } };
};

/** That event as an anchor: its id and position read from the log. */
const anchorOf = async (store: EventStore, last: LastFollowed | null): Promise<Anchor | undefined> => {
  if (!last) return undefined;
  const [event] = await store.readStream(last.stream, { fromRevision: last.revision, maxCount: 1 });
  return (
    event && { stream: event.stream, revision: String(event.revision), position: String(event.position), id: event.id }
  );
};

/** Whether the log holds that very event, read from its stream (a direct read on every adapter). */
const holds = async (store: EventStore, anchor: Anchor): Promise<boolean> => {
  const [event] = await store.readStream(anchor.stream, { fromRevision: BigInt(anchor.revision), maxCount: 1 });
  return event !== undefined && event.id === anchor.id && String(event.position) === anchor.position;
};
