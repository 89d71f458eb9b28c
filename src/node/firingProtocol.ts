import type { Logger } from 'pino';
import type { Subject } from 'rxjs';
import { ErrorCode, isFencedError, isKairosError } from '../../domain/errors/index.js';
import { decideFolded, type TaskCommand } from '../../domain/task/decide.js';
import { taskStreamOf, type TaskEvent } from '../../domain/task/events.js';
import type { TaskState } from '../../domain/task/state.js';
import type { Clock } from '../clock/clock.js';
import { isDuplicateEventIdError, isWrongExpectedVersionError, type EventStore } from '../store/eventStore.js';
import type { FireDeliveries } from './fireDeliveries.js';
import { encodeTaskEvent } from './taskCodec.js';
import type { TaskRecord } from './taskRecord.js';
import type { TaskRecords } from './taskRecords.js';

/** Who asked for a change: recorded as the event's metadata. */
export type CommandContext = { actor: string; correlationId?: string };

/** What the node appended for one task, after it is durable: for metrics, live feeds and tests. */
export type AppendedBatch = {
  taskId: string;
  events: TaskEvent[];
  firstRevision: bigint;
  /** The log position of the last of `events`. */
  position: bigint;
  /** Who caused it: `node:<id>` for the node's own decisions, the operator otherwise. */
  actor: string;
};

export type FiringProtocolOptions = {
  nodeId: string;
  clock: Clock;
  store: EventStore;
  records: TaskRecords;
  deliveries: FireDeliveries;
  logger: Logger;
  appended$: Subject<AppendedBatch>;
  /** A record changed (or was decided on and did not): re-arm its wake-up. */
  settle: (record: TaskRecord) => void;
  /** Counts a decision as under way until it settles (the due-task admission's bound). */
  track: <T>(decision: Promise<T>) => Promise<T>;
};

const MAX_CONFLICT_RETRIES = 8;

/**
 * The firing protocol (design §3), one decision per task at a time: decide on the folded state →
 * append at the revision it was folded at → apply → effects (deliveries). A conflict means the state
 * was stale: read the stream, decide again.
 */
export class FiringProtocol {
  readonly #o: FiringProtocolOptions;
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Why the last append failed because the store is unavailable; null once one succeeds again. */
  #storeFailing: string | null = null;

  constructor(options: FiringProtocolOptions) {
    this.#o = options;
  }

  get storeProblem(): string | null {
    return this.#storeFailing;
  }

  /** Settles once every decision under way has. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#chains.values()]);
  }

  /** Decides `build`'s command for the task (null: nothing to decide) and records the result. */
  execute(
    taskId: string,
    ctx: CommandContext,
    build: (record: TaskRecord) => TaskCommand | null,
  ): Promise<TaskEvent[]> {
    return this.#o.track(this.serially(taskId, () => this.#decideAndAppend(taskId, ctx, build)));
  }

  /** Runs `fn` after every earlier decision about the same task: one decision per task at a time. */
  serially<T>(taskId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(taskId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#chains.set(taskId, tail);
    void tail.then(() => {
      if (this.#chains.get(taskId) === tail) this.#chains.delete(taskId);
    });
    return run;
  }

  async #decideAndAppend(
    taskId: string,
    ctx: CommandContext,
    build: (record: TaskRecord) => TaskCommand | null,
  ): Promise<TaskEvent[]> {
    const { records, settle, logger } = this.#o;
    for (let conflicts = 0; ; conflicts++) {
      const record = records.recordOf(taskId);
      const command = build(record);
      if (!command) return [];
      const decidedOn = record.state;
      let events: TaskEvent[];
      let folded: TaskState;
      try {
        ({ events, state: folded } = decideFolded(command, decidedOn));
      } catch (err) {
        if (isFencedError(err)) logger.warn({ taskId, err: err.message }, 'fenced: a newer owner holds the task');
        settle(record);
        throw err;
      }
      if (events.length === 0) {
        settle(record);
        return events;
      }
      try {
        await this.#append(record, events, { decidedOn, state: folded }, ctx);
        return events;
      } catch (err) {
        if (isKairosError(err) && err.code === ErrorCode.unavailable) this.#storeFailing = err.message;
        // Either error means the stream moved on since this state was folded (another node appended,
        // possibly the very same fire): re-read and decide again on what is really there.
        if (!(isWrongExpectedVersionError(err) || isDuplicateEventIdError(err)) || conflicts >= MAX_CONFLICT_RETRIES)
          throw err;
        await records.catchUp(record);
      }
    }
  }

  async #append(
    record: TaskRecord,
    events: TaskEvent[],
    decision: { decidedOn: TaskState; state: TaskState },
    ctx: CommandContext,
  ): Promise<void> {
    const { nodeId, store, records, deliveries, settle, appended$, clock } = this.#o;
    const expected = record.revision;
    const metadata = {
      actor: ctx.actor,
      ...(ctx.correlationId ? { correlationId: ctx.correlationId } : {}),
      // Where an operator's change was made; the node's own decisions name it as their actor.
      ...(ctx.actor.startsWith('node:') ? {} : { node: nodeId }),
    };
    record.appendingThrough = expected + BigInt(events.length);
    const now = clock.now();
    const result = await store
      .appendToStream(
        taskStreamOf(record.taskId),
        events.map((e) => encodeTaskEvent(e, metadata, now)),
        { expectedRevision: expected < 0n ? 'no_stream' : expected },
      )
      .finally(() => (record.appendingThrough = -1n));
    this.#storeFailing = null;
    const first = result.nextExpectedRevision - BigInt(events.length) + 1n;
    records.applyDecided(record, events, first, decision);
    deliveries.effects(record, events);
    settle(record);
    appended$.next({
      taskId: record.taskId,
      events,
      firstRevision: first,
      position: result.position,
      actor: ctx.actor,
    });
  }
}
