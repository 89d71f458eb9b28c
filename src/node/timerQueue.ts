import type { Clock, TimerHandle } from '../clock/clock.js';

/**
 * All wake-ups of all tasks on one node, driven by a single armed timer (design §5). A binary min-heap
 * of (time, key) with lazy deletion: rescheduling a key pushes a new entry and the stale one is
 * dropped when it surfaces. Due keys are handed over in one batch, so thousands of tasks due in the
 * same millisecond cost one wake-up and can share one store transaction. With a lead, wake-ups are also
 * handed over that long before their time (and leave the queue), for work that is done ahead of it.
 */
/** Wake-ups handed over `lead` ms ahead of their time, as (key, time) pairs, besides the due ones. */
export type TimerLead = { lead: number; onSoon: (soon: Array<[key: string, at: number]>) => void };

export class TimerQueue {
  readonly #clock: Clock;
  readonly #onDue: (keys: string[]) => void;
  readonly #ahead: TimerLead | null;
  readonly #due = new Map<string, number>();
  #heapAt: number[] = [];
  #heapKey: string[] = [];
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
    this.#push(at, key);
    // Replaced entries are dropped lazily when they surface; a key rescheduled earlier leaves its old
    // entry deep in the heap, so rebuild it before the stale ones outnumber the live ones.
    if (this.#heapAt.length > 2 * this.#due.size + 1024) this.#rebuild();
    if (!this.#armed || at < this.#armed.at) this.#arm();
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
    const at = this.#peekLive();
    if (at === undefined) return;
    const lead = this.#ahead?.lead ?? 0;
    this.#armed = { at, handle: this.#clock.setTimer(() => this.#fire(), Math.max(0, at - lead - this.#clock.now())) };
  }

  #fire(): void {
    this.#armed = null;
    const now = this.#clock.now();
    const until = now + (this.#ahead?.lead ?? 0);
    const keys: string[] = [];
    const soon: Array<[string, number]> = [];
    for (let at = this.#peekLive(); at !== undefined && at <= until; at = this.#peekLive()) {
      const key = this.#pop();
      this.#due.delete(key);
      if (at <= now) keys.push(key);
      else soon.push([key, at]);
    }
    // Re-arm before handing over: handlers reschedule, and must see an armed queue.
    this.#arm();
    if (soon.length > 0) this.#ahead?.onSoon(soon);
    if (keys.length > 0) this.#onDue(keys);
  }

  /** Earliest time of an entry that is still current, discarding stale ones on the way. */
  #peekLive(): number | undefined {
    while (this.#heapAt.length > 0) {
      const at = this.#heapAt[0] as number;
      if (this.#due.get(this.#heapKey[0] as string) === at) return at;
      this.#pop();
    }
    return undefined;
  }

  #rebuild(): void {
    this.#heapAt = [];
    this.#heapKey = [];
    for (const [key, at] of this.#due) this.#push(at, key);
  }

  /** Entries in the heap, current and replaced: bounded by about twice the scheduled keys. */
  get entries(): number {
    return this.#heapAt.length;
  }

  #push(at: number, key: string): void {
    const ats = this.#heapAt;
    const keys = this.#heapKey;
    let i = ats.length;
    ats.push(at);
    keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((ats[parent] as number) <= at) break;
      ats[i] = ats[parent] as number;
      keys[i] = keys[parent] as string;
      i = parent;
    }
    ats[i] = at;
    keys[i] = key;
  }

  #pop(): string {
    const ats = this.#heapAt;
    const keys = this.#heapKey;
    const top = keys[0] as string;
    const lastAt = ats.pop() as number;
    const lastKey = keys.pop() as string;
    const n = ats.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (ats[r] as number) < (ats[l] as number) ? r : l;
        if ((ats[c] as number) >= lastAt) break;
        ats[i] = ats[c] as number;
        keys[i] = keys[c] as string;
        i = c;
      }
      ats[i] = lastAt;
      keys[i] = lastKey;
    }
    return top;
  }
}
