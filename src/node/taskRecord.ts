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
