import { slotOf } from '../../domain/cluster/index.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { evolve, initialTaskState, type TaskState } from '../../domain/task/state.js';

/**
 * One task on this node: its folded state at a stream revision (about 1 KB, mostly its spec). Events
 * are applied with the pure `evolve`, the task machine's one action (domain/task/machine.ts), without
 * an XState actor: an actor added ~30 µs of CPU per fire and 4 KB per task and did nothing `evolve`
 * does not (docs/architecture.md, "The node folds with `evolve`, not with XState actors").
 */
export class TaskRecord {
  readonly taskId: string;
  /** Revision of the last event applied; -1n before the stream exists. */
  revision = -1n;
  /**
   * While this node's append to the stream is in flight, the last revision it would take (else -1n):
   * the log subscription passes over those revisions — the append applies its own events when it
   * resolves, and a conflict (someone else's event there) is caught up by reading the stream.
   */
  appendingThrough = -1n;
  /** Revision of the last `TaskStateCaptured` applied (retention), -1 if none: the history folds from there. */
  lastCapture = -1;
  /** The revision retention last looked at this stream, -1 if never (kept as a number: 1,000,000 records). */
  retentionCheckedAt = -1;
  #state: TaskState;
  /** The task's slot, cached: the leader counts tasks per slot on every housekeeping pass. */
  #slot = -1;
  #slotCount = 0;

  constructor(taskId: string, state?: TaskState) {
    this.taskId = taskId;
    this.#state = state ?? initialTaskState(taskId);
  }

  get state(): TaskState {
    return this.#state;
  }

  /** Applies a recorded event at `revision`. */
  apply(event: TaskEvent, revision: bigint): void {
    this.#state = evolve(this.#state, event);
    this.revision = revision;
    if (event.type === 'TaskStateCaptured') this.lastCapture = Number(revision);
  }

  /**
   * Takes `state` as what `events` (at revisions `first`…) fold to from the record's state: the firing
   * protocol's decision folded them already (`decideFolded`). `first` is right after the record's
   * revision (the caller checks).
   */
  adopt(events: readonly TaskEvent[], first: bigint, state: TaskState): void {
    this.#state = state;
    this.revision = first + BigInt(events.length - 1);
    events.forEach((event, i) => {
      if (event.type === 'TaskStateCaptured') this.lastCapture = Number(first) + i;
    });
  }

  /**
   * The stream goes on after `revision` but was truncated before that (retention): what the missing
   * events did is unknown until the capture that follows every truncation, so start from nothing.
   */
  forgetUpTo(revision: bigint): void {
    this.#state = initialTaskState(this.taskId);
    this.revision = revision;
    this.lastCapture = -1;
  }

  slotIn(slotCount: number): number {
    if (this.#slotCount !== slotCount) [this.#slot, this.#slotCount] = [slotOf(this.taskId, slotCount), slotCount];
    return this.#slot;
  }
}
