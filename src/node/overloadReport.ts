import type { Logger } from 'pino';
import type { TaskEvent } from '../../domain/task/events.js';
import type { Clock } from '../clock/clock.js';

/** How often, at most, an overload is logged while it lasts; and how long without a miss ends it. */
const EVERY_MS = 10_000;

/**
 * The log lines of an overload: a warning when the node first records ticks it missed because due
 * work waited for room (`TaskMisfired` with cause `overload`), a summary at most every 10 s while it
 * lasts, and a line when it is over (a task decided on time after 10 s without such a miss). The
 * events themselves are the record; this keeps a sustained overload from writing a line per task.
 */
export class OverloadReport {
  readonly #clock: Clock;
  readonly #log: Logger;
  #since: number | null = null;
  #lastMiss = 0;
  #loggedAt = 0;
  #ticks = 0;
  #tasks = 0;
  #total = 0;

  constructor(clock: Clock, log: Logger) {
    this.#clock = clock;
    this.#log = log;
  }

  /** A due task's decision is done; `overloaded`: it had waited for room. */
  decided(events: readonly TaskEvent[], overloaded: boolean, waiting: number): void {
    // Called for every due task's decision: a report with no overload under way asks nothing, not even the time.
    if (!overloaded) {
      if (this.#since === null) return;
      const now = this.#clock.now();
      if (now - this.#lastMiss >= EVERY_MS) this.#over(now);
      return;
    }
    let ticks = 0;
    for (const e of events) if (e.type === 'TaskMisfired' && e.data.cause === 'overload') ticks += e.data.count ?? 1;
    if (ticks === 0) return;
    const now = this.#clock.now();
    this.#ticks += ticks;
    this.#tasks++;
    this.#lastMiss = now;
    if (this.#since === null) this.#since = now;
    else if (now - this.#loggedAt < EVERY_MS) return;
    this.#loggedAt = now;
    this.#total += this.#ticks;
    this.#log.warn(
      { missedTicks: this.#ticks, tasks: this.#tasks, dueWaiting: waiting, sinceMs: now - this.#since },
      'node overloaded: due tasks wait for room, and the ticks they miss are handled by their misfire policy (TaskMisfired, cause overload)',
    );
    this.#ticks = 0;
    this.#tasks = 0;
  }

  #over(now: number): void {
    this.#log.info(
      { missedTicks: this.#total + this.#ticks, ms: now - (this.#since ?? now) },
      'node no longer overloaded: due tasks are decided on time again',
    );
    this.#since = null;
    this.#ticks = 0;
    this.#tasks = 0;
    this.#total = 0;
  }
}
