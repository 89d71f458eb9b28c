/**
 * Where due tasks wait for the firing protocol: at most `maxInFlight` decisions are under way at once
 * (due tasks, outcomes and operators' commands alike, every one counted through `track`), and due tasks
 * beyond that wait here in the order they fell due, each task at most once. The queue is therefore
 * bounded by the number of tasks, and the work behind it by `maxInFlight`: past capacity, lateness
 * grows here, where it is counted, instead of as an unbounded backlog of appends, deliveries and
 * outcomes further down. A task that waited because of the bound is advanced as `overloaded`, so the
 * ticks it missed meanwhile are recorded with that cause by its misfire policy.
 *
 * Admission goes in slices, yielding between them: the store starts writing one slice's decisions
 * while the next is decided, instead of after a whole instant's.
 */
export type DueAdmissionOptions = {
  maxInFlight: number;
  /** Decides a due task; settles when its decision is done (appended or failed). */
  advance: (taskId: string, overloaded: boolean) => void;
  /** False once the node is stopping: nothing more is admitted. */
  running: () => boolean;
};

const SLICE = 1_000;

export class DueAdmission {
  readonly #options: DueAdmissionOptions;
  /** Waiting task ids from `#head` on; the ones before `#heldBefore` were held back by the bound. */
  #queue: string[] = [];
  #head = 0;
  #heldBefore = 0;
  readonly #waiting = new Set<string>();
  #inFlight = 0;
  #pumpQueued = false;

  constructor(options: DueAdmissionOptions) {
    if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1)
      throw new RangeError(`maxInFlight must be a whole number ≥ 1, got ${options.maxInFlight}`);
    this.#options = options;
  }

  /** Decisions under way. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Due tasks waiting to be decided. */
  get waiting(): number {
    return this.#waiting.size;
  }

  get maxInFlight(): number {
    return this.#options.maxInFlight;
  }

  /** Due tasks, in the order they fell due; one already waiting keeps its place. */
  admit(taskIds: readonly string[]): void {
    for (const id of taskIds) {
      if (this.#waiting.has(id)) continue;
      this.#waiting.add(id);
      this.#queue.push(id);
    }
    this.#pump();
  }

  /** Counts `count` decisions as under way until `decision` settles; settling lets waiting tasks in. */
  track<T>(decision: Promise<T>, count = 1): Promise<T> {
    this.#inFlight += count;
    const settled = (): void => {
      this.#inFlight -= count;
      if (this.#waiting.size > 0) this.#queuePump();
    };
    decision.then(settled, settled);
    return decision;
  }

  #pump(): void {
    if (!this.#options.running()) return;
    const room = this.#options.maxInFlight - this.#inFlight;
    const take = Math.min(SLICE, room, this.#queue.length - this.#head);
    for (let i = 0; i < take; i++) {
      const index = this.#head++;
      const id = this.#queue[index] as string;
      this.#waiting.delete(id);
      this.#options.advance(id, index < this.#heldBefore);
    }
    this.#compact();
    if (this.#head === this.#queue.length) return;
    // Full: everything waiting now waited because of the bound. Otherwise only the slice ended.
    if (this.#inFlight >= this.#options.maxInFlight) this.#heldBefore = this.#queue.length;
    else this.#queuePump();
  }

  /**
   * After this turn's decisions have run (they run as microtasks) and their appends were handed to the
   * store, so its flush goes first; several settling decisions share one pump.
   */
  #queuePump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    queueMicrotask(() =>
      setImmediate(() => {
        this.#pumpQueued = false;
        this.#pump();
      }),
    );
  }

  /** Drops the admitted front of the queue once it is all of it, or most of a long one. */
  #compact(): void {
    const drained = this.#head === this.#queue.length;
    if (!drained && (this.#head <= 4_096 || this.#head * 2 <= this.#queue.length)) return;
    this.#queue = drained ? [] : this.#queue.slice(this.#head);
    this.#heldBefore = Math.max(0, this.#heldBefore - this.#head);
    this.#head = 0;
  }
}
