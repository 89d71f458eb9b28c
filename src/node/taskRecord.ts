import { createActor, type Actor } from 'xstate';
import { slotOf } from '../../domain/cluster/index.js';
import type { TaskEvent } from '../../domain/task/events.js';
import { snapshotOf, taskMachine } from '../../domain/task/machine.js';
import { evolve, initialTaskState, type TaskState } from '../../domain/task/state.js';

type TaskActor = Actor<typeof taskMachine>;

/**
 * One task on this node: its folded state at a stream revision, and — while its next fire is near —
 * its XState actor. Far-future tasks hibernate as the plain state only (about 1 KB, mostly its spec, instead of
 * ~4 KB and an actor) and are woken again by the node ahead of need (design §9). Asleep or awake,
 * events are applied by the same pure `evolve`.
 */
export class TaskRecord {
  readonly taskId: string;
  /** Revision of the last event applied; -1n before the stream exists. */
  revision = -1n;
  /** Revision of the last `TaskStateCaptured` applied (retention), -1 if none: the history folds from there. */
  lastCapture = -1;
  /** The revision retention last looked at this stream, -1 if never (kept as a number: 1,000,000 records). */
  retentionCheckedAt = -1;
  #state: TaskState;
  #actor: TaskActor | null = null;
  /** The task's slot, cached: the leader counts tasks per slot on every housekeeping pass. */
  #slot = -1;
  #slotCount = 0;

  constructor(taskId: string, state?: TaskState) {
    this.taskId = taskId;
    this.#state = state ?? initialTaskState(taskId);
  }

  get state(): TaskState {
    return this.#actor ? this.#actor.getSnapshot().context : this.#state;
  }

  get awake(): boolean {
    return this.#actor !== null;
  }

  /** Applies a recorded event at `revision`. Replay while hibernated uses `evolve` directly: same function, no actor. */
  apply(event: TaskEvent, revision: bigint): void {
    if (this.#actor) this.#actor.send(event);
    else this.#state = evolve(this.#state, event);
    this.revision = revision;
    if (event.type === 'TaskStateCaptured') this.lastCapture = Number(revision);
  }

  /**
   * The stream goes on after `revision` but was truncated before that (retention): what the missing
   * events did is unknown until the capture that follows every truncation, so start from nothing.
   */
  forgetUpTo(revision: bigint): void {
    this.hibernate();
    this.#state = initialTaskState(this.taskId);
    this.revision = revision;
    this.lastCapture = -1;
  }

  slotIn(slotCount: number): number {
    if (this.#slotCount !== slotCount) [this.#slot, this.#slotCount] = [slotOf(this.taskId, slotCount), slotCount];
    return this.#slot;
  }

  wake(): void {
    if (this.#actor) return;
    this.#actor = createActor(taskMachine, {
      snapshot: snapshotOf(this.#state),
      input: { taskId: this.taskId },
    }).start();
  }

  hibernate(): void {
    if (!this.#actor) return;
    this.#state = this.#actor.getSnapshot().context;
    this.#actor.stop();
    this.#actor = null;
  }
}
