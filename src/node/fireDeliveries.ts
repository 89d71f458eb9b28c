import type { Logger } from 'pino';
import type { TaskEvent, TaskEventData } from '../../domain/task/events.js';
import type { TaskSpec } from '../../domain/task/spec.js';
import { toIso, toMillis } from '../../domain/time/instant.js';
import type { FireDelivery, Target } from '../targets/dispatcher.js';
import type { TaskRecord } from './taskRecord.js';

/**
 * The effects of durable appends on the node's target: each recorded fire handed over (after its
 * append, never before), cancellations passed on, and which attempts this process has handed over —
 * so a lease change re-sends only the others, and a stop can wait for their outcomes.
 */
export class FireDeliveries {
  readonly #nodeId: string;
  readonly #target: Target;
  readonly #log: Logger;
  /** Attempts this process has handed to the target (`fireId#attempt`). */
  readonly #delivered = new Set<string>();

  constructor(options: { nodeId: string; target: Target; logger: Logger }) {
    this.#nodeId = options.nodeId;
    this.#target = options.target;
    this.#log = options.logger;
  }

  /** Effects of a durable append, each isolated: one failing delivery must not cost the others theirs. */
  effects(record: TaskRecord, events: readonly TaskEvent[]): void {
    for (const e of events) {
      try {
        if (e.type === 'TaskFired') this.#deliverFired(record, e.data);
        else if (e.type === 'TaskFailed' && e.data.reason !== 'error')
          this.#target.cancel(e.data.fireId, e.data.attempt);
      } catch (err) {
        this.#log.error({ err, taskId: record.taskId, event: e.type }, 'effect of a recorded event failed');
      }
    }
  }

  /** However the outcome arrived (this node's append, another process's), the attempt has left the target. */
  outcomeRecorded(fireId: string, attempt: number): void {
    this.#delivered.delete(`${fireId}#${attempt}`);
  }

  /** A fire recorded without an outcome (the node crashed, or its owner was lost) goes out again, unless this process already handed it over. */
  redeliver(record: TaskRecord, now: number): void {
    for (const fire of record.state.inFlight) {
      if (fire.deadline !== null && fire.deadline > now && !this.#delivered.has(`${fire.fireId}#${fire.attempt}`))
        this.#deliver(record, fire.fireId, fire.attempt);
    }
  }

  /** Whether an attempt this process handed over still awaits its outcome before its deadline. */
  awaiting(records: Iterable<TaskRecord>, now: number): boolean {
    for (const record of records) {
      for (const fire of record.state.inFlight) {
        if (fire.deadline !== null && fire.deadline > now && this.#delivered.has(`${fire.fireId}#${fire.attempt}`))
          return true;
      }
    }
    return false;
  }

  #deliver(record: TaskRecord, fireId: string, attempt: number): void {
    const fire = record.state.inFlight.find((f) => f.fireId === fireId && f.attempt === attempt);
    const spec = record.state.spec;
    if (!fire || !spec || fire.deadline === null) return;
    // `fire.trigger` is why the fire happened; a later attempt is delivered as what it is, a retry.
    this.#handOver(
      deliveryOf(
        spec,
        fire.fireId,
        fire.attempt,
        fire.attempt > 1 ? 'retry' : fire.trigger,
        toIso(fire.scheduledAt),
        toIso(fire.firedAt),
        fire.deadline,
        this.#nodeId,
      ),
    );
  }

  #deliverFired(record: TaskRecord, d: TaskEventData<'TaskFired'>): void {
    const spec = record.state.spec;
    if (!spec) return;
    this.#handOver(
      deliveryOf(
        spec,
        d.fireId,
        d.attempt,
        d.trigger,
        // The event's own times, as recorded: already in the delivery's ISO form.
        d.scheduledAt,
        d.firedAt,
        toMillis(d.deadline),
        d.node,
      ),
    );
  }

  #handOver(fire: FireDelivery): void {
    this.#delivered.add(`${fire.fireId}#${fire.attempt}`);
    try {
      this.#target.deliver(fire);
    } catch (err) {
      this.#log.error(
        { err, taskId: fire.taskId, fireId: fire.fireId },
        'target refused a fire; it stays in flight until its deadline',
      );
    }
  }
}

const deliveryOf = (
  spec: TaskSpec,
  fireId: string,
  attempt: number,
  trigger: FireDelivery['trigger'],
  scheduledAt: string,
  firedAt: string,
  deadline: number,
  node: string,
): FireDelivery => ({
  taskId: spec.id,
  ...(spec.name ? { taskName: spec.name } : {}),
  fireId,
  attempt,
  trigger,
  scheduledAt,
  firedAt,
  deadline,
  payload: spec.payload,
  target: spec.target,
  node,
});
