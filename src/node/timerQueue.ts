import type { Clock, TimerHandle } from '../clock/clock.js';
import { TimeHeap } from './timeHeap.js';

/**
 * Wake-ups handed over `lead` ms ahead of their time, as (key, time) pairs, besides the due ones: those
 * of an instant that `takes(at, count)` wants, and only while `active()`. The others are handed over
 * when due, as without a lead.
 */
export type TimerLead = {
  lead: number;
  takes: (at: number, count: number) => boolean;
  onSoon: (soon: Array<[key: string, at: number]>) => void;
  active: () => boolean;
};

/**
 * All wake-ups of all tasks on one node, driven by a single armed timer (design §5). A min-heap of
 * (time, key) with lazy deletion: rescheduling a key pushes a new entry and the stale one is dropped
 * when it surfaces. Due keys are handed over in one batch, so thousands of tasks due in the same
 * millisecond cost one wake-up and can share one store transaction. With a lead, the keys of a large
 * instant are handed over that long before it (and leave the queue), for work done ahead of it; the
 * keys of small instants move to a second heap that is only ever handed over when due.
 */
export class TimerQueue {
  readonly #clock: Clock;
  readonly #onDue: (keys: string[]) => void;
  readonly #ahead: TimerLead | null;
  readonly #due = new Map<string, number>();
  readonly #heap = new TimeHeap();
  /** Keys of instants too small to hand over ahead: due at their time only. */
  readonly #whenDue = new TimeHeap();
  #armed: { at: number; handle: TimerHandle } | null = null;
  #stopped = false;

  constructor(clock: Clock, onDue: (keys: string[]) => void, ahead: TimerLead | null = null) {
    this.#clock = clock;
    this.#onDue = onDue;
    this.#ahead = ahead;
  }

  /** Wakes `key` at `at` (epoch ms), replacing any earlier wake-up of it; null cancels. */
  schedule(key: string, at: number | null): void {
    if (at === null) {
      this.#due.delete(key);
      return;
    }
    if (this.#due.get(key) === at) return;
    this.#due.set(key, at);
    this.#heap.push(at, key);
    // Replaced entries are dropped lazily when they surface; a key rescheduled earlier leaves its old
    // entry deep in a heap, so rebuild before the stale ones outnumber the live ones.
    if (this.entries > 2 * this.#due.size + 1024) this.#rebuild();
    if (!this.#armed || at - this.#lead() < this.#armed.at) this.#arm();
  }

  /** When `key` is due, if scheduled. */
  dueAt(key: string): number | undefined {
    return this.#due.get(key);
  }

  get size(): number {
    return this.#due.size;
  }

  stop(): void {
    this.#stopped = true;
    this.#armed?.handle.cancel();
    this.#armed = null;
  }

  #arm(): void {
    this.#armed?.handle.cancel();
    this.#armed = null;
    if (this.#stopped) return;
    const ahead = this.#peekLive(this.#heap);
    const whenDue = this.#peekLive(this.#whenDue);
    const at = Math.min(ahead === undefined ? Infinity : ahead - this.#lead(), whenDue ?? Infinity);
    if (at === Infinity) return;
    this.#armed = { at, handle: this.#clock.setTimer(() => this.#fire(), Math.max(0, at - this.#clock.now())) };
  }

  #fire(): void {
    this.#armed = null;
    const now = this.#clock.now();
    const lead = this.#lead();
    const keys: string[] = [];
    for (let at = this.#peekLive(this.#whenDue); at !== undefined && at <= now; at = this.#peekLive(this.#whenDue)) {
      const key = this.#whenDue.pop();
      this.#due.delete(key);
      keys.push(key);
    }
    const soon: Array<[string, number]> = [];
    let instant: Array<[string, number]> = [];
    const handOver = (): void => {
      const at = (instant[0] as [string, number])[1];
      // An instant not taken ahead waits for its time in the other heap, with no lead.
      const taken = this.#ahead?.takes(at, instant.length) ?? false;
      for (const entry of instant) {
        if (!taken) this.#whenDue.push(at, entry[0]);
        else {
          this.#due.delete(entry[0]);
          soon.push(entry);
        }
      }
      instant = [];
    };
    for (let at = this.#peekLive(this.#heap); at !== undefined && at <= now + lead; at = this.#peekLive(this.#heap)) {
      const key = this.#heap.pop();
      if (at <= now) {
        this.#due.delete(key);
        keys.push(key);
        continue;
      }
      if (instant.length > 0 && (instant[0] as [string, number])[1] !== at) handOver();
      instant.push([key, at]);
    }
    if (instant.length > 0) handOver();
    // Re-arm before handing over: handlers reschedule, and must see an armed queue.
    this.#arm();
    if (soon.length > 0) this.#ahead?.onSoon(soon);
    if (keys.length > 0) this.#onDue(keys);
  }

  #lead(): number {
    return this.#ahead?.active() ? this.#ahead.lead : 0;
  }

  /** Earliest time of an entry of `heap` that is still current, discarding stale ones on the way. */
  #peekLive(heap: TimeHeap): number | undefined {
    for (let at = heap.topAt; at !== undefined; at = heap.topAt) {
      if (this.#due.get(heap.topKey as string) === at) return at;
      heap.pop();
    }
    return undefined;
  }

  #rebuild(): void {
    this.#heap.clear();
    this.#whenDue.clear();
    for (const [key, at] of this.#due) this.#heap.push(at, key);
  }

  /** Entries in the heaps, current and replaced: bounded by about twice the scheduled keys. */
  get entries(): number {
    return this.#heap.size + this.#whenDue.size;
  }
}
