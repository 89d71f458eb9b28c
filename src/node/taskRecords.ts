import { EMPTY, defer, expand, from, tap, type Observable } from 'rxjs';
import type { Logger } from 'pino';
import { taskIdOfStream, taskStreamOf, type TaskEvent } from '../../domain/task/events.js';
import type { TaskState } from '../../domain/task/state.js';
import type { EventStore, RecordedEvent } from '../store/eventStore.js';
import type { LastFollowed, SnapshotRecord, StateSnapshot } from './stateSnapshot.js';
import { decodeTaskEvent } from './taskCodec.js';
import { TaskRecord } from './taskRecord.js';

export type TaskRecordsOptions = {
  store: EventStore;
  logger: Logger;
  /** Events read per page when the log is replayed. */
  pageSize: number;
  /**
   * After an event was applied to a record, by whichever path it came (placement, deliveries). For the
   * node's own decisions, called for each event once all of them are: the record holds their end state.
   */
  applied: (record: TaskRecord, event: TaskEvent) => void;
};

/**
 * Every task this node knows, one record each, folded at the revisions of its stream — from the
 * replay at start, the node's own appends and the log it follows — with the highest ownership epoch
 * and the log position seen so far. An event is applied only at the record's next revision, so two
 * paths bringing the same event apply it once.
 */
export class TaskRecords {
  readonly #records = new Map<string, TaskRecord>();
  readonly #store: EventStore;
  readonly #log: Logger;
  readonly #pageSize: number;
  readonly #applied: TaskRecordsOptions['applied'];
  #maxEpoch = 0;
  #position = 0n;
  /** The stream and revision of the event at `#position` (two fields: set for every event followed). */
  #lastStream: string | null = null;
  #lastRevision = -1n;
  /** Started from a snapshot: a revision skipped in the replay after it may be a hole, not a truncation. */
  #restored = false;
  readonly #gapped = new Set<string>();

  constructor(options: TaskRecordsOptions) {
    this.#store = options.store;
    this.#log = options.logger;
    this.#pageSize = options.pageSize;
    this.#applied = options.applied;
  }

  get size(): number {
    return this.#records.size;
  }

  /** The last log position folded in or passed over (replay, then the log followed). */
  get position(): bigint {
    return this.#position;
  }

  /** The event at `position`, for a snapshot's anchor. */
  get lastFollowed(): LastFollowed | null {
    return this.#lastStream === null ? null : { stream: this.#lastStream, revision: this.#lastRevision };
  }

  /** The log has been followed up to this event (folded in, or passed over as already held). */
  followed(stream: string, revision: bigint, position: bigint): void {
    if (position <= this.#position) return;
    this.#position = position;
    this.#lastStream = stream;
    this.#lastRevision = revision;
  }

  /** The highest epoch any owner recorded (or a capture kept as its floor). */
  get maxEpoch(): number {
    return this.#maxEpoch;
  }

  get(taskId: string): TaskRecord | undefined {
    return this.#records.get(taskId);
  }

  has(taskId: string): boolean {
    return this.#records.has(taskId);
  }

  values(): IterableIterator<TaskRecord> {
    return this.#records.values();
  }

  /**
   * The task's record, created empty when new: in the map before any append, since the log
   * subscription may bring the appended events back before the append resolves, and must find it.
   */
  recordOf(taskId: string): TaskRecord {
    let record = this.#records.get(taskId);
    if (!record) {
      record = new TaskRecord(taskId);
      this.#records.set(taskId, record);
    }
    return record;
  }

  /** Applies an event only at the next revision: the node's own append and the log subscription may both bring it. */
  applyAt(record: TaskRecord, event: TaskEvent, revision: bigint): void {
    if (revision !== record.revision + 1n) return;
    record.apply(event, revision);
    this.#noteEpoch(event);
    this.#applied(record, event);
  }

  /**
   * The node's own append of `events` at revisions `first`…, decided on the record's state `decidedOn`
   * and folding to `state`: taken as it is when the record still holds that very state right before
   * `first`; otherwise (the log follower applied some of them meanwhile) applied one by one.
   */
  applyDecided(
    record: TaskRecord,
    events: readonly TaskEvent[],
    first: bigint,
    decision: { decidedOn: TaskState; state: TaskState },
  ): void {
    if (first !== record.revision + 1n || record.state !== decision.decidedOn) {
      events.forEach((e, i) => this.applyAt(record, e, first + BigInt(i)));
      return;
    }
    record.adopt(events, first, decision.state);
    for (const event of events) {
      this.#noteEpoch(event);
      this.#applied(record, event);
    }
  }

  applyRecorded(record: TaskRecord, recorded: RecordedEvent): void {
    if (recorded.revision <= record.revision) return;
    // Read from the store, a revision skipped means the stream was truncated there (retention); the
    // capture that follows every truncation brings the state back.
    if (recorded.revision > record.revision + 1n) record.forgetUpTo(recorded.revision - 1n);
    const decoded = decodeTaskEvent(recorded);
    if (decoded.ok) {
      this.applyAt(record, decoded.event, recorded.revision);
    } else {
      // Skipping keeps the revision moving so one bad event cannot wedge the task; it is reported loudly.
      this.#log.error({ problem: decoded.error }, 'undecodable event in a task stream');
      record.revision = recorded.revision;
    }
  }

  /** Reads the task's stream past the record's revision. */
  async catchUp(record: TaskRecord): Promise<void> {
    const events = await this.#store.readStream(taskStreamOf(record.taskId), { fromRevision: record.revision + 1n });
    for (const recorded of events) this.applyRecorded(record, recorded);
  }

  /**
   * Whether the log subscription passes over this event: the node has, or is appending, this revision
   * of the task's stream. Either way the log has been followed that far.
   */
  readonly passOver = (stream: string, revision: bigint, position: bigint): boolean => {
    const taskId = taskIdOfStream(stream);
    const record = taskId === undefined ? undefined : this.#records.get(taskId);
    const held = record !== undefined && (revision <= record.revision || revision <= record.appendingThrough);
    if (held) this.followed(stream, revision, position);
    return held;
  };

  /** Every record of a stream that exists, as plain data, for a snapshot. */
  *snapshotRecords(): Generator<SnapshotRecord> {
    for (const r of this.#records.values())
      if (r.revision >= 0n) yield [r.taskId, String(r.revision), r.lastCapture, r.retentionCheckedAt, r.state];
  }

  /** Starts from a snapshot instead of nothing (all of it or none): the replay then folds the log after its position. */
  restore(snapshot: StateSnapshot): void {
    const records = snapshot.records.map(([taskId, revision, lastCapture, retentionCheckedAt, state]) => {
      const record = new TaskRecord(taskId, state);
      record.revision = BigInt(revision);
      record.lastCapture = lastCapture;
      record.retentionCheckedAt = retentionCheckedAt;
      return record;
    });
    for (const record of records) this.#records.set(record.taskId, record);
    this.#position = snapshot.position;
    this.#maxEpoch = Math.max(this.#maxEpoch, snapshot.maxEpoch);
    this.#restored = true;
  }

  /**
   * After a replay from a snapshot: a stream whose next revision the replay did not find is read again
   * from its start. Retention truncates streams (the usual reason), but a record the snapshot saved
   * behind the log (an event the node passed over and then failed to apply) would otherwise be taken
   * for a truncated one and folded from nothing.
   */
  async rereadGapped(): Promise<void> {
    for (const taskId of this.#gapped) {
      const record = new TaskRecord(taskId);
      this.#records.set(taskId, record);
      await this.catchUp(record);
    }
    this.#gapped.clear();
  }

  /** Replays every task stream after `position` up to `head` in pages, folding with plain `evolve` (no effects). */
  replay$(head: bigint): Observable<unknown> {
    const page = (after: bigint) =>
      defer(() => from(this.#store.readAll({ after, maxCount: this.#pageSize }).then((events) => ({ after, events }))));
    // `expand` re-emits every page it fetches, so folding after it sees them all.
    return page(this.#position).pipe(
      expand(({ events }) => {
        const last = events.at(-1);
        return last && last.position < head ? page(last.position) : EMPTY;
      }),
      tap(({ events }) => this.#foldPage(events, head)),
    );
  }

  #foldPage(events: readonly RecordedEvent[], head: bigint): void {
    for (const recorded of events) {
      if (recorded.position > head) break;
      this.followed(recorded.stream, recorded.revision, recorded.position);
      const taskId = taskIdOfStream(recorded.stream);
      if (taskId === undefined) continue;
      const record = this.recordOf(taskId);
      if (this.#restored && recorded.revision > record.revision + 1n) this.#gapped.add(taskId);
      this.applyRecorded(record, recorded);
    }
  }

  #noteEpoch(event: TaskEvent): void {
    if (event.type === 'TaskAssigned' || event.type === 'TaskReassigned' || event.type === 'TaskFired') {
      if (event.data.epoch > this.#maxEpoch) this.#maxEpoch = event.data.epoch;
    } else if (event.type === 'TaskStateCaptured') {
      // The events that recorded it may be truncated: the single node's next epoch must still exceed it.
      if (event.data.state.epochFloor > this.#maxEpoch) this.#maxEpoch = event.data.state.epochFloor;
    }
  }
}
