import type { Logger } from 'pino';
import type { Subject } from 'rxjs';
import { ErrorCode, isFencedError, isKairosError } from '../../domain/errors/index.js';
import { decideFolded, type TaskCommand } from '../../domain/task/decide.js';
import { taskStreamOf, type TaskEvent } from '../../domain/task/events.js';
import type { TaskState } from '../../domain/task/state.js';
import type { Clock } from '../clock/clock.js';
import {
  isDuplicateEventIdError,
  isWrongExpectedVersionError,
  type AppendResult,
  type BatchAppendResult,
  type EventData,
  type EventStore,
  type StreamAppend,
} from '../store/eventStore.js';
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
  /** Counts decisions as under way until they settle (the due-task admission's bound). */
  track: <T>(decisions: Promise<T>, count?: number) => Promise<T>;
  /** The context of the node's own decisions. */
  asNode: CommandContext;
};

/** A decision the node made ahead of its instant, on the record's state at `revision`. */
export type DecidedAhead = {
  record: TaskRecord;
  revision: bigint;
  decidedOn: TaskState;
  events: TaskEvent[];
  state: TaskState;
};

/** Nothing was applied to the task since `d` was decided, and nothing is being appended to it. */
const unmoved = (d: DecidedAhead): boolean => d.record.state === d.decidedOn && d.record.appendingThrough === -1n;

const MAX_CONFLICT_RETRIES = 8;
/** Decisions made ahead per batch of the store. */
const AHEAD_CHUNK = 1_000;

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

  /**
   * Decides `build`'s command for the task (null: nothing to decide) and records the result. With
   * `wait`, the decision first waits for it in the task's turn: nothing else is decided about the task
   * meanwhile, not even ahead of its instant (an outcome waiting there may change what is due).
   */
  execute(
    taskId: string,
    ctx: CommandContext,
    build: (record: TaskRecord) => TaskCommand | null,
    wait: Promise<void> | null = null,
  ): Promise<TaskEvent[]> {
    const decide = (): Promise<TaskEvent[]> => this.#decideAndAppend(taskId, ctx, build);
    if (!wait) return this.#o.track(this.serially(taskId, decide));
    // Counted as under way once it is decided, not while it waits.
    return this.serially(taskId, () => wait.then(() => this.#o.track(decide())));
  }

  /** Runs `fn` after every earlier decision about the same task: one decision per task at a time. */
  serially<T>(taskId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(taskId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    // The task's turn ends once `run` settles, either way; the chain is forgotten then unless a later
    // decision joined it meanwhile.
    const ended = (): void => {
      if (this.#chains.get(taskId) === tail) this.#chains.delete(taskId);
    };
    const tail = run.then(ended, ended);
    this.#chains.set(taskId, tail);
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
    const expected = record.revision;
    record.appendingThrough = expected + BigInt(events.length);
    let result: AppendResult;
    try {
      result = await this.#o.store.appendToStream(
        taskStreamOf(record.taskId),
        this.#encoded(events, ctx, this.#o.clock.now()),
        { expectedRevision: expected < 0n ? 'no_stream' : expected },
      );
    } finally {
      record.appendingThrough = -1n;
    }
    this.#storeFailing = null;
    this.#recorded(record, events, decision, result, ctx.actor);
  }

  /**
   * The node's own decision about a task, made ahead of `at` (`build` gets the record as it is now)
   * and held until then: null when the task has a decision under way, or nothing to decide.
   */
  decideAhead(taskId: string, build: (record: TaskRecord) => TaskCommand | null): DecidedAhead | null {
    const record = this.#o.records.get(taskId);
    if (!record || this.#chains.has(taskId) || record.appendingThrough !== -1n) return null;
    const command = build(record);
    if (!command) return null;
    try {
      const { events, state } = decideFolded(command, record.state);
      return events.length === 0 ? null : { record, revision: record.revision, decidedOn: record.state, events, state };
    } catch {
      // Decided again when due, where a failure is reported and retried as any other.
      return null;
    }
  }

  /**
   * Appends decisions made ahead (`decideAhead`) as the node's own, each at the revision it was
   * decided on, in batches of the store that go out one per turn: the store writes the first while the
   * next is encoded, and the first's fires are delivered while the next is written. Returns the tasks
   * whose decision no longer holds (the task moved on since, or its append failed): they are to be
   * decided again, now.
   */
  async appendAhead(decided: readonly DecidedAhead[], now: number, proceed: () => boolean): Promise<string[]> {
    const stale: string[] = [];
    const fresh: DecidedAhead[] = [];
    for (const d of decided) {
      const { record } = d;
      if (this.#chains.has(record.taskId) || !unmoved(d)) stale.push(record.taskId);
      else fresh.push(d);
    }
    if (fresh.length === 0) return stale;
    // One decision per task at a time: later ones about these tasks (and a stop) wait for the whole
    // release, which takes its room among the decisions under way at once, before anything else can.
    let released = (): void => undefined;
    const done = new Promise<void>((resolve) => (released = resolve));
    for (const { record } of fresh) this.#chains.set(record.taskId, done);
    void this.#o.track(done, fresh.length);
    try {
      const chunks: Promise<void>[] = [];
      for (let at = 0; at < fresh.length; at += AHEAD_CHUNK) {
        if (at > 0) await new Promise((resolve) => setImmediate(resolve));
        const chunk = fresh.slice(at, at + AHEAD_CHUNK);
        // A stop meanwhile: the rest is not written (what is, stays decided under way until written).
        if (proceed()) chunks.push(this.#appendChunk(chunk, now, stale));
        else for (const d of chunk) stale.push(d.record.taskId);
      }
      await Promise.all(chunks);
      return stale;
    } finally {
      for (const { record } of fresh) if (this.#chains.get(record.taskId) === done) this.#chains.delete(record.taskId);
      released();
    }
  }

  async #appendChunk(chunk: DecidedAhead[], now: number, stale: string[]): Promise<void> {
    const ctx = this.#o.asNode;
    const fresh = chunk.filter((d) => {
      // Moved on while the earlier chunks went out (the log follower brought another node's event).
      if (unmoved(d)) return true;
      stale.push(d.record.taskId);
      return false;
    });
    let results: BatchAppendResult[];
    try {
      const appends = fresh.map(({ record, events, revision }): StreamAppend => {
        record.appendingThrough = revision + BigInt(events.length);
        return {
          stream: taskStreamOf(record.taskId),
          events: this.#encoded(events, ctx, now),
          expectedRevision: revision < 0n ? 'no_stream' : revision,
        };
      });
      results = await this.#o.store.appendBatch(appends);
    } catch (err) {
      results = fresh.map((): BatchAppendResult => ({ ok: false, error: err as Error }));
    } finally {
      for (const { record } of fresh) record.appendingThrough = -1n;
    }
    for (const [i, d] of fresh.entries()) {
      const outcome = results[i] as BatchAppendResult;
      if (outcome.ok) {
        this.#storeFailing = null;
        this.#recorded(d.record, d.events, d, outcome.result, ctx.actor);
        continue;
      }
      if (isKairosError(outcome.error) && outcome.error.code === ErrorCode.unavailable)
        this.#storeFailing = outcome.error.message;
      stale.push(d.record.taskId);
    }
  }

  #encoded(events: readonly TaskEvent[], ctx: CommandContext, now: number): EventData[] {
    const metadata = {
      actor: ctx.actor,
      ...(ctx.correlationId ? { correlationId: ctx.correlationId } : {}),
      // Where an operator's change was made; the node's own decisions name it as their actor.
      ...(ctx.actor.startsWith('node:') ? {} : { node: this.#o.nodeId }),
    };
    return events.map((e) => encodeTaskEvent(e, metadata, now));
  }

  /** A durable append of the node: applied, its effects run, the task re-armed, and it is announced. */
  #recorded(
    record: TaskRecord,
    events: TaskEvent[],
    decision: { decidedOn: TaskState; state: TaskState },
    result: AppendResult,
    actor: string,
  ): void {
    const { records, deliveries, settle, appended$ } = this.#o;
    const first = result.nextExpectedRevision - BigInt(events.length) + 1n;
    records.applyDecided(record, events, first, decision);
    deliveries.effects(record, events);
    settle(record);
    appended$.next({ taskId: record.taskId, events, firstRevision: first, position: result.position, actor });
  }
}
