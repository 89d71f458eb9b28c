import type { TargetSpec } from '../../domain/task/spec.js';
import type { Trigger } from '../../domain/task/events.js';

/**
 * The boundary between the node runtime and the ways a fire reaches the business. The runtime hands a
 * fire over only after its `TaskFired` is durably appended (design §3), and learns the outcome through
 * `OutcomeListener`; a target never writes to the log itself.
 */

/** One attempt of one fire, as delivered. `fireId` is the idempotency key business services dedupe on. */
export type FireDelivery = {
  taskId: string;
  taskName?: string;
  fireId: string;
  attempt: number;
  trigger: Trigger;
  /** ISO times. */
  scheduledAt: string;
  firedAt: string;
  /** Epoch ms after which the runtime records the attempt as timed out; targets stop trying then. */
  deadline: number;
  payload: unknown;
  target: TargetSpec;
  /** Node that fired it. */
  node: string;
};

/** What a subscriber's handler sees of a topic fire, the same from a node and in direct mode. */
export const topicFireFieldsOf = (fire: FireDelivery, topic: string) => ({
  fireId: fire.fireId,
  attempt: fire.attempt,
  taskId: fire.taskId,
  ...(fire.taskName === undefined ? {} : { taskName: fire.taskName }),
  topic,
  scheduledAt: fire.scheduledAt,
  firedAt: fire.firedAt,
  trigger: fire.trigger,
  payload: fire.payload,
  deadline: fire.deadline,
});

/** What one consumer group (topic) or the webhook (http) said about an attempt. */
export type OutcomeDetail = {
  group?: string;
  consumer?: string;
  status: 'succeeded' | 'failed';
  message?: string;
  httpStatus?: number;
};

export type FireOutcome = {
  taskId: string;
  fireId: string;
  attempt: number;
  status: 'succeeded' | 'failed';
  /** For failures: a one-line reason, shown in history. */
  message?: string;
  /** Epoch ms when the outcome became known. */
  at: number;
  details: OutcomeDetail[];
};

export type OutcomeListener = (outcome: FireOutcome) => void;

export interface Target {
  /** Starts delivering an attempt; returns at once. The outcome is reported through the listener, at most once per attempt. */
  deliver(fire: FireDelivery): void;
  /** Stops trying to deliver an attempt (timed out, or cancelled by the overlap policy); no outcome follows. */
  cancel(fireId: string, attempt: number): void;
  close(): Promise<void>;
}
