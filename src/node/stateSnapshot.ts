import { open, readFile, rename } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { TaskState } from '../../domain/task/state.js';
import type { EventStore } from '../store/eventStore.js';

/**
 * A node's task records saved beside the log, so a start folds only the log's tail (issue 10, goal 6).
 * One file: a header line — format version, the log position every record includes, the id of the
 * event at that position (so a snapshot of another log, or of this one before a restore from a
 * backup, is told apart), the highest epoch, a CRC-32 of the body — then the body, one JSON array of
 * records. Written to a temporary file, synced, then renamed over the last one: a crash while writing
 * leaves the previous snapshot.
 */

/** `[taskId, revision, lastCapture, retentionCheckedAt, state]`: a TaskRecord as plain data. */
export type SnapshotRecord = [
  taskId: string,
  revision: string,
  lastCapture: number,
  retentionChecked: number,
  TaskState,
];

export type StateSnapshot = {
  /** Every record includes the log up to here (some go further: the node's own appends). */
  position: bigint;
  maxEpoch: number;
  records: SnapshotRecord[];
};

type Header = { v: 1; position: string; anchorId: string; maxEpoch: number; tasks: number; crc32: number };

const VERSION = 1;

/** Records serialized per turn of the event loop: a snapshot of 100,000 tasks never holds a fire up for long. */
const SLICE = 2_000;

export const writeSnapshot = async (
  file: string,
  store: EventStore,
  snapshot: { position: bigint; maxEpoch: number; records: Iterable<SnapshotRecord> },
): Promise<'written' | 'nothing to save'> => {
  const anchor = await eventAt(store, snapshot.position);
  if (!anchor) return 'nothing to save';
  const parts: string[] = [];
  let n = 0;
  for (const record of snapshot.records) {
    parts.push(JSON.stringify(record));
    if (++n % SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const body = Buffer.from(`[${parts.join(',')}]`);
  const header: Header = {
    v: VERSION,
    position: String(snapshot.position),
    anchorId: anchor,
    maxEpoch: snapshot.maxEpoch,
    tasks: n,
    crc32: crc32(body),
  };
  // One node per data directory: a fixed name, so a crash mid-write leaves no pile of them.
  const temporary = `${file}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(`${JSON.stringify(header)}\n`);
    await handle.writeFile(body);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
  return 'written';
};

/**
 * The snapshot in `file` if it can be trusted for this log; otherwise why not (none yet, damaged, of
 * another log or of this one before it was restored): the caller then replays the whole log.
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
  const newline = content.indexOf(0x0a);
  let header: Header;
  try {
    header = JSON.parse(content.subarray(0, newline).toString()) as Header;
  } catch {
    return { ok: false, problem: 'its header is not JSON' };
  }
  if (header.v !== VERSION) return { ok: false, problem: `format version ${header.v}, not ${VERSION}` };
  const body = content.subarray(newline + 1);
  if (crc32(body) !== header.crc32) return { ok: false, problem: 'its body does not match its checksum' };
  const position = BigInt(header.position);
  const anchor = await eventAt(store, position);
  if (anchor !== header.anchorId)
    return {
      ok: false,
      problem: anchor
        ? `the log has another event at position ${position}: a snapshot of another log, or of this one before a restore`
        : `the log has no event at position ${position} any more`,
    };
  const records = JSON.parse(body.toString()) as SnapshotRecord[];
  if (records.length !== header.tasks) return { ok: false, problem: 'its body holds a different number of tasks' };
  return { ok: true, snapshot: { position, maxEpoch: header.maxEpoch, records } };
};

/** The id of the event at `position`, if the log has one there. */
const eventAt = async (store: EventStore, position: bigint): Promise<string | undefined> => {
  if (position <= 0n) return undefined;
  const [event] = await store.readAll({ after: position - 1n, maxCount: 1 });
  return event?.position === position ? event.id : undefined;
};
