/**
 * Time as a port: everything that reads the time or waits takes a `Clock`, so tests drive time with
 * `SimulatedClock` and production uses `systemClock`.
 */
export type TimerHandle = { cancel(): void };

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Runs `callback` once `delayMs` have passed (delays above 2^31-1 ms are handled, unlike `setTimeout`). */
  setTimer(callback: () => void, delayMs: number): TimerHandle;
}

/** Node's `setTimeout` turns delays above this into 1 ms. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * A timer of the system clock: one object per timer, its `setTimeout` handed the timer itself rather
 * than a closure — the topic hub arms two per fire. A delay longer than `setTimeout` takes is waited
 * out in steps.
 */
class SystemTimer implements TimerHandle {
  readonly #callback: () => void;
  readonly #deadline: number;
  #handle: NodeJS.Timeout | undefined;
  #cancelled = false;

  constructor(callback: () => void, delayMs: number) {
    this.#callback = callback;
    this.#deadline = Date.now() + delayMs;
    this.#arm(delayMs);
  }

  cancel(): void {
    this.#cancelled = true;
    clearTimeout(this.#handle);
  }

  #arm(remaining: number): void {
    this.#handle = setTimeout(SystemTimer.#due, Math.max(0, Math.min(remaining, MAX_TIMEOUT_MS)), this);
  }

  static #due(timer: SystemTimer): void {
    if (timer.#cancelled) return;
    const left = timer.#deadline - Date.now();
    if (left > 0) timer.#arm(left);
    else timer.#callback();
  }
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (callback, delayMs) => new SystemTimer(callback, delayMs),
};
