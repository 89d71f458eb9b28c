import type { Clock } from '../clock/clock.js';
import type { StateChange } from './hubConnection.js';

/** What both modes of `subscribe` run on: the caller's options, checked and defaulted once. */
export type CompiledOptions = {
  group: string;
  /** Distinct, in the caller's order. */
  topics: readonly string[];
  consumerId: string;
  backoff: Backoff;
  dedupeSize: number;
  clock: Clock;
  /** The caller's callbacks, guarded: a throwing one cannot break a connection's event loop. */
  onStateChange: (change: StateChange) => void;
  onError: (error: Error) => void;
};

export type Backoff = { initialDelay: number; maxDelay: number };

/**
 * The wait before the next try after `failures` consecutive failures: a random time between half and
 * all of `min(maxDelay, initialDelay × 2^failures)`. The jitter spreads the reconnects of many consumers
 * after a restart.
 */
export const backoffDelay = ({ initialDelay, maxDelay }: Backoff, failures: number): number => {
  const ceiling = Math.min(maxDelay, initialDelay * 2 ** failures);
  return ceiling / 2 + Math.random() * (ceiling / 2);
};
