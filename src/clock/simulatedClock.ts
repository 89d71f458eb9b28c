import type { Clock, TimerHandle } from './clock.js';

type Timer = { at: number; seq: number; callback: () => void; cancelled: boolean };

/**
 * A clock that moves only when told. `increment(ms)` runs every timer that falls due in order of its due
 * time, with `now()` reading that due time while it runs, and refuses to go backwards.
 */
export class SimulatedClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];

  constructor(start: number | Date = Date.UTC(2026, 0, 1)) {
    this.#now = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const timer: Timer = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, callback, cancelled: false };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Moves time forward by `ms`, firing due timers (and timers they set that also fall due) in order. */
  increment(ms: number): void {
    if (ms < 0) throw new RangeError(`SimulatedClock cannot go backwards (increment(${ms}))`);
    this.#advanceTo(this.#now + ms);
  }

  /** Moves time forward to `instant` (epoch ms). */
  set(instant: number | Date): void {
    const target = typeof instant === 'number' ? instant : instant.getTime();
    if (target < this.#now) throw new RangeError(`SimulatedClock cannot go backwards (from ${this.#now} to ${target})`);
    this.#advanceTo(target);
  }

  /** Number of armed, uncancelled timers. */
  get pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  #advanceTo(target: number): void {
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      let next: Timer | undefined;
      for (const t of this.#timers) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
    }
    this.#now = target;
  }
}
