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

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    let handle: NodeJS.Timeout;
    let cancelled = false;
    const arm = (remaining: number): void => {
      const deadline = Date.now() + remaining;
      handle = setTimeout(
        () => {
          if (cancelled) return;
          const left = deadline - Date.now();
          if (left > 0) arm(left);
          else callback();
        },
        Math.max(0, Math.min(remaining, MAX_TIMEOUT_MS)),
      );
    };
    arm(delayMs);
    return {
      cancel() {
        cancelled = true;
        clearTimeout(handle);
      },
    };
  },
};
