import type { Clock, TimerHandle } from '../clock/clock.js';
import type { DecidedAhead } from './firingProtocol.js';

/** A decision made ahead, with the lease epoch it was made under. */
export type HeldDecision = { decided: DecidedAhead; epoch: number };

export type FiresAheadOptions = {
  clock: Clock;
  running: () => boolean;
  /** Due tasks are waiting for room already: deciding ahead would only add work, they are decided when due. */
  backlogged: () => boolean;
  /** How many more decisions may be under way now (the admission's bound): the rest are due the ordinary way. */
  room: () => number;
  /** The node's decision about the task as of `at`, made now; null when there is none to make ahead. */
  decide: (taskId: string, at: number) => HeldDecision | null;
  /** Whether the task is still held under the lease of that epoch. */
  leaseHolds: (taskId: string, epoch: number) => boolean;
  /** Appends decisions made ahead as one batch; resolves with the tasks to decide again. */
  append: (decided: DecidedAhead[], at: number) => Promise<string[]>;
  /** Tasks due now, decided the ordinary way. */
  due: (taskIds: string[]) => void;
  /** A decision made ahead was appended. */
  appended: (decided: DecidedAhead) => void;
};

/**
 * Work per turn of the event loop — decisions made ahead (~20 µs each), outcomes let through after a
 * release (~40 µs) — kept to a few milliseconds, so the next instant's release is not held up by it.
 */
const DECIDE_SLICE = 250;
const DEFERRED_SLICE = 100;

/**
 * A decision released later than this after its instant is made again, at the release: it recorded
 * the instant as its time (`firedAt`), and that must stay close to when it really went out.
 */
export const RELEASE_TOLERANCE_MS = 5;

/** Tasks are held only for an instant with at least this many: a few (spread ticks) gain nothing from a batch. */
const AHEAD_MIN = 100;
/** An instant with this many fires makes outcomes wait for its release (`releaseTurn`). */
const LARGE_INSTANT = 1_000;
/** Outcomes waiting for a release at most; beyond, they are recorded at once. */
export const MAX_DEFERRED = 50_000;

/** The tasks held for one instant; `undecided` may name some twice or dropped since (skipped). */
type Instant = { timer: TimerHandle; held: Map<string, HeldDecision | null>; undecided: string[]; queued: boolean };

/**
 * Fires decided ahead of their instant (issue 10's "decide and encode ahead, append as one batch when
 * due"). The timer queue hands the wake-ups of a large instant (`takes`) over a lead before it; each
 * is decided then — on the task's state as it is, with the instant as `now` — a slice per turn, and
 * held. At the instant, every decision whose task has not moved since (same state, nothing under way,
 * same lease) goes to the store as one batch, so thousands of fires due at the same second cost a few
 * transactions and no per-fire decision on the way out; the others are decided the ordinary way,
 * then. A release that begins late decides its tasks again, with the real time.
 *
 * What is held is bounded by the task count (one entry per task). While due tasks wait for room
 * (overload), nothing is handed over ahead and nothing held is decided: those tasks are due at their
 * instant, as without a lead.
 */
export class FiresAhead {
  readonly #o: FiresAheadOptions;
  readonly #instants = new Map<number, Instant>();
  /** When each held task is due. */
  readonly #heldAt = new Map<string, number>();
  /** Large instants with tasks still to decide, earliest handed over first. */
  #toDecide: number[] = [];
  #pumpQueued = false;
  /** The release of a large instant under way, if any; resolves once its fires are all out. */
  #releasing: Promise<void> | null = null;
  #deferred: Array<() => void> = [];

  constructor(options: FiresAheadOptions) {
    this.#o = options;
  }

  /** Tasks due at the given instants, soon: held until then and decided meanwhile. */
  hold(soon: ReadonlyArray<[taskId: string, at: number]>): void {
    for (const [taskId, at] of soon) {
      this.drop(taskId);
      const instant = this.#instantAt(at);
      instant.held.set(taskId, null);
      instant.undecided.push(taskId);
      this.#heldAt.set(taskId, at);
      if (!instant.queued) {
        instant.queued = true;
        this.#toDecide.push(at);
      }
    }
    this.#queuePump();
  }

  /**
   * Where an outcome waits while a large instant goes out: a promise of its turn after the release
   * (a hundred are let through per turn of the event loop), or null when no large release is under way
   * (or MAX_DEFERRED already wait). What an outcome makes the node do (decide, append) would otherwise
   * compete with the instant's fires for this thread and the store.
   */
  releaseTurn(): Promise<void> | null {
    if (!this.#releasing || this.#deferred.length >= MAX_DEFERRED) return null;
    return new Promise<void>((resolve) => this.#deferred.push(resolve));
  }

  /** What waited for a release goes on a slice per turn: all at once would hold up the next instant's release. */
  #drainDeferred(): void {
    for (const turn of this.#deferred.splice(0, DEFERRED_SLICE)) turn();
    if (this.#deferred.length > 0 && !this.#releasing) setImmediate(() => this.#drainDeferred());
  }

  /** Whether `count` tasks due at `at` are worth holding: an instant this large, or one held already. */
  takes(at: number, count: number): boolean {
    return count >= AHEAD_MIN || this.#instants.has(at);
  }

  /** When a held task is due. */
  heldAt(taskId: string): number | undefined {
    return this.#heldAt.get(taskId);
  }

  /** Forgets the task's held instant (its wake-up moved). */
  drop(taskId: string): void {
    const at = this.#heldAt.get(taskId);
    if (at === undefined) return;
    this.#heldAt.delete(taskId);
    const instant = this.#instants.get(at);
    instant?.held.delete(taskId);
    if (instant?.held.size === 0) {
      instant.timer.cancel();
      this.#instants.delete(at);
    }
  }

  get held(): number {
    return this.#heldAt.size;
  }

  /** Outcomes waiting for a release to end. */
  get deferred(): number {
    return this.#deferred.length;
  }

  stop(): void {
    for (const instant of this.#instants.values()) instant.timer.cancel();
    this.#instants.clear();
    this.#heldAt.clear();
    this.#toDecide = [];
  }

  #instantAt(at: number): Instant {
    let instant = this.#instants.get(at);
    if (!instant) {
      const timer = this.#o.clock.setTimer(() => this.#release(at), Math.max(0, at - this.#o.clock.now()));
      instant = { timer, held: new Map(), undecided: [], queued: false };
      this.#instants.set(at, instant);
    }
    return instant;
  }

  #queuePump(): void {
    if (this.#pumpQueued || this.#toDecide.length === 0) return;
    this.#pumpQueued = true;
    setImmediate(() => {
      this.#pumpQueued = false;
      this.#decideSlice();
    });
  }

  #decideSlice(): void {
    const { running, backlogged, decide } = this.#o;
    if (!running() || backlogged()) {
      // Overloaded: the held tasks are decided when due, as without a lead; hand-overs from now on queue anew.
      for (const at of this.#toDecide.splice(0)) {
        const instant = this.#instants.get(at);
        if (instant) [instant.undecided, instant.queued] = [[], false];
      }
      return;
    }
    let budget = DECIDE_SLICE;
    while (budget > 0 && this.#toDecide.length > 0) {
      const at = this.#toDecide[0] as number;
      const instant = this.#instants.get(at);
      const taskId = instant?.undecided.pop();
      if (!instant || taskId === undefined) {
        this.#toDecide.shift();
        if (instant) instant.queued = false;
        continue;
      }
      // Dropped, or already decided (handed over twice): nothing to do.
      if (instant.held.get(taskId) !== null) continue;
      instant.held.set(taskId, decide(taskId, at));
      budget--;
    }
    this.#queuePump();
  }

  #release(at: number): void {
    const instant = this.#instants.get(at);
    if (!instant) return;
    this.#instants.delete(at);
    for (const taskId of instant.held.keys()) this.#heldAt.delete(taskId);
    const { clock, running, leaseHolds, decide, due } = this.#o;
    if (!running()) return;
    const startedAt = clock.now();
    // Late (a busy event loop): decided again now, so that what is recorded says when it really went out.
    const late = startedAt - at > RELEASE_TOLERANCE_MS;
    const room = this.#o.room();
    const now: string[] = [];
    const ready: DecidedAhead[] = [];
    for (const [taskId, held] of instant.held) {
      const decided = held && ready.length < room ? (late ? decide(taskId, startedAt) : held) : null;
      if (decided && leaseHolds(taskId, decided.epoch)) ready.push(decided.decided);
      else now.push(taskId);
    }
    // First: the release takes its room among the decisions under way before the others are admitted.
    if (ready.length > 0) this.#append(ready, late ? startedAt : at);
    if (now.length > 0) due(now);
  }

  #append(ready: DecidedAhead[], at: number): void {
    const { append, due, appended } = this.#o;
    const released = append(ready, at)
      .then(
        (stale) => {
          const again = new Set(stale);
          for (const d of ready) if (!again.has(d.record.taskId)) appended(d);
          if (stale.length > 0) due(stale);
        },
        // Decided again the ordinary way, which reports and retries what went wrong.
        () => due(ready.map((d) => d.record.taskId)),
      )
      .finally(() => {
        if (this.#releasing !== released) return;
        this.#releasing = null;
        this.#drainDeferred();
      });
    if (ready.length >= LARGE_INSTANT) this.#releasing = released;
  }
}
