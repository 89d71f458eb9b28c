import { performance } from 'node:perf_hooks';
import { BehaviorSubject } from 'rxjs';
import type { Clock, TimerHandle } from '../clock/clock.js';

/** Busy after this many samples in a row at or above `BUSY`; calm after this many below `CALM`. */
const BUSY = 0.4;
const CALM = 0.2;
const BUSY_SAMPLES = 2;
const CALM_SAMPLES = 5;

/**
 * Whether the node is busy, judged every `intervalMs` from its event loop's utilization (the share of
 * the time its main thread was working): busy after 2 samples in a row at 40 % or more, calm again
 * after 5 below 20 % — so a burst does not flip it back and forth.
 */
export class NodeLoad {
  readonly busy$ = new BehaviorSubject(false);
  readonly #clock: Clock;
  readonly #utilization: () => number;
  readonly #intervalMs: number;
  #timer: TimerHandle | null = null;
  #streak = 0;

  constructor(options: { clock: Clock; utilization?: () => number; intervalMs?: number }) {
    this.#clock = options.clock;
    this.#utilization = options.utilization ?? eventLoopUtilization();
    this.#intervalMs = options.intervalMs ?? 1_000;
  }

  start(): void {
    const sample = (): void => {
      this.#judge(this.#utilization());
      this.#timer = this.#clock.setTimer(sample, this.#intervalMs);
    };
    this.#timer = this.#clock.setTimer(sample, this.#intervalMs);
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = null;
    this.busy$.complete();
  }

  #judge(utilization: number): void {
    const busy = this.busy$.value;
    const toward = busy ? utilization < CALM : utilization >= BUSY;
    this.#streak = toward ? this.#streak + 1 : 0;
    if (this.#streak < (busy ? CALM_SAMPLES : BUSY_SAMPLES)) return;
    this.#streak = 0;
    this.busy$.next(!busy);
  }
}

/** The main thread's event-loop utilization since the last call (0–1). */
const eventLoopUtilization = (): (() => number) => {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return share;
  };
};
