import type { Logger } from 'pino';
import { isFencedError } from '../../domain/errors/index.js';
import { nextWakeAt, type TaskCommand } from '../../domain/task/decide.js';
import type { TaskEvent } from '../../domain/task/events.js';
import type { Clock } from '../clock/clock.js';
import { DueAdmission } from './dueAdmission.js';
import { FiresAhead, MAX_DEFERRED, type HeldDecision } from './firesAhead.js';
import type { DecidedAhead } from './firingProtocol.js';
import { OverloadReport } from './overloadReport.js';
import type { TaskLeases } from './taskLeases.js';
import type { TaskRecord } from './taskRecord.js';
import type { TaskRecords } from './taskRecords.js';
import type { TaskRetention } from './taskRetention.js';
import { TimerQueue } from './timerQueue.js';

/** The firing pipeline's queues: what waits in each now, and its bound. */
export type PipelineDepths = {
  /** Decisions under way: appends queued or being written, and what follows them. */
  decisionsInFlight: number;
  maxDecisionsInFlight: number;
  /** Due tasks waiting for room among the decisions (each task at most once: bounded by the task count). */
  dueWaiting: number;
  /** Tasks held for their instant, decided ahead or to be (each task at most once). */
  heldAhead: number;
  /** Outcomes waiting for a large instant's release to end (FiresAhead.releaseTurn), and their bound. */
  outcomesWaiting: number;
  maxOutcomesWaiting: number;
};

export type WakeSchedulerOptions = {
  clock: Clock;
  logger: Logger;
  records: TaskRecords;
  leases: TaskLeases;
  retention: TaskRetention;
  maxDecisionsInFlight: number;
  running: () => boolean;
  /** The firing protocol: decides the command for the task as the node's own decision. */
  decide: (taskId: string, build: (record: TaskRecord) => TaskCommand | null) => Promise<TaskEvent[]>;
  /** Deciding `lead` ms ahead of a task's wake-up, and appending at it (FiresAhead); null: only when due. */
  ahead: {
    lead: number;
    decide: (taskId: string, build: (record: TaskRecord) => TaskCommand | null) => DecidedAhead | null;
    append: (decided: DecidedAhead[], at: number) => Promise<string[]>;
  } | null;
};

/**
 * When each task is next acted on, and getting due tasks decided: one timer queue for every task's
 * wake-up (re-armed whenever a record changes, which is also when retention is told to look at the
 * task), the admission that bounds the decisions under way (due tasks beyond it wait, and are
 * advanced as overloaded), and a backing-off retry of a decision that failed.
 */
export class WakeScheduler {
  readonly #o: WakeSchedulerOptions;
  readonly #timers: TimerQueue;
  readonly #admission: DueAdmission;
  readonly #overload: OverloadReport;
  readonly #ahead: FiresAhead | null;
  /** Consecutive failed decisions per task, for backing off. */
  readonly #failures = new Map<string, number>();

  constructor(options: WakeSchedulerOptions) {
    this.#o = options;
    this.#admission = new DueAdmission({
      maxInFlight: options.maxDecisionsInFlight,
      advance: (taskId, overloaded) => this.#advance(taskId, overloaded),
      running: options.running,
    });
    this.#overload = new OverloadReport(options.clock, options.logger);
    // While due tasks wait for room, deciding ahead would only add work: each is handed over when due.
    const backlogged = (): boolean => this.#admission.waiting > 0;
    this.#ahead =
      options.ahead &&
      new FiresAhead({
        clock: options.clock,
        running: options.running,
        backlogged,
        room: () => this.#admission.maxInFlight - this.#admission.inFlight,
        decide: (taskId, at) => this.#decideAhead(taskId, at),
        leaseHolds: (taskId, epoch) => options.leases.claimingLease(taskId)?.epoch === epoch,
        append: options.ahead.append,
        due: (ids) => this.#admission.admit(ids),
        appended: (decided) => {
          this.#failures.delete(decided.record.taskId);
          this.#overload.decided(decided.events, false, this.#admission.waiting);
        },
      });
    const ahead = this.#ahead;
    this.#timers = new TimerQueue(
      options.clock,
      (ids) => this.#admission.admit(ids),
      ahead && {
        lead: options.ahead?.lead ?? 0,
        takes: (at, count) => ahead.takes(at, count),
        onSoon: (soon) => ahead.hold(soon),
        active: () => !backlogged(),
      },
    );
  }

  /** Counts decisions as under way until they settle: the admission's bound covers every kind. */
  track<T>(decisions: Promise<T>, count?: number): Promise<T> {
    return this.#admission.track(decisions, count);
  }

  /** Where an outcome waits while a large instant goes out (FiresAhead.releaseTurn); null: it need not. */
  releaseTurn(): Promise<void> | null {
    return this.#ahead?.releaseTurn() ?? null;
  }

  pipeline(): PipelineDepths {
    return {
      decisionsInFlight: this.#admission.inFlight,
      maxDecisionsInFlight: this.#admission.maxInFlight,
      dueWaiting: this.#admission.waiting,
      heldAhead: this.#ahead?.held ?? 0,
      outcomesWaiting: this.#ahead?.deferred ?? 0,
      maxOutcomesWaiting: MAX_DEFERRED,
    };
  }

  /** When the node will next act on a task, as armed. */
  wakeAt(taskId: string): number | undefined {
    return this.#timers.dueAt(taskId) ?? this.#ahead?.heldAt(taskId);
  }

  /** Re-arms the task's wake-up (none when this node may not fire it), and lets retention look at it. */
  settle(record: TaskRecord): void {
    if (!this.#o.running()) return;
    const { leases, retention } = this.#o;
    const lease = leases.leaseOf(record.taskId);
    leases.renewIfOutdated(record, lease);
    const mayFire = leases.mayFire(record, lease);
    const wake = mayFire ? nextWakeAt(record.state) : null;
    // A decision held for the same instant is checked when released; one for another is void.
    if (this.#ahead?.heldAt(record.taskId) !== wake) this.#ahead?.drop(record.taskId);
    this.#timers.schedule(record.taskId, wake);
    if (mayFire) retention.consider(record);
  }

  stop(): void {
    this.#timers.stop();
    this.#ahead?.stop();
  }

  #decideAhead(taskId: string, at: number): HeldDecision | null {
    let epoch = 0;
    const decided = this.#o.ahead?.decide(taskId, (record) => {
      const lease = this.#o.leases.claimingLease(record.taskId);
      if (!lease) return null;
      epoch = lease.epoch;
      return { type: 'Advance', now: at, lease, overloaded: false };
    });
    return decided ? { decided, epoch } : null;
  }

  #advance(taskId: string, overloaded: boolean): void {
    const { clock, leases, logger, records } = this.#o;
    void this.#o
      .decide(taskId, () => {
        const lease = leases.claimingLease(taskId);
        return lease ? { type: 'Advance', now: clock.now(), lease, overloaded } : null;
      })
      .then(
        (events) => {
          this.#failures.delete(taskId);
          this.#overload.decided(events, overloaded, this.#admission.waiting);
        },
        (err: unknown) => {
          if (isFencedError(err)) {
            this.#failures.delete(taskId);
            return;
          }
          // A failed decision leaves the state as it was: try again, backing off from 1 s to a minute
          // so a store outage or a persistent conflict does not turn into a hot loop.
          const failures = (this.#failures.get(taskId) ?? 0) + 1;
          this.#failures.set(taskId, failures);
          logger.error({ err, taskId, failures }, 'could not advance a task');
          if (records.has(taskId))
            this.#timers.schedule(taskId, clock.now() + Math.min(60_000, 1_000 * 2 ** (failures - 1)));
        },
      );
  }
}
