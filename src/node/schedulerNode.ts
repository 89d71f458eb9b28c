import { EMPTY, Subject, defer, expand, from, lastValueFrom, tap, type Observable, type Subscription } from 'rxjs';
import type { Logger } from 'pino';
import { isPinned } from '../../domain/cluster/index.js';
import { ErrorCode, IllegalStateError, KairosError, isFencedError, isKairosError } from '../../domain/errors/index.js';
import { decide, nextWakeAt, type Lease as DomainLease, type TaskCommand } from '../../domain/task/decide.js';
import {
  TASK_STREAM_PREFIX,
  taskIdOfStream,
  taskStreamOf,
  type TaskEvent,
  type TaskEventData,
} from '../../domain/task/events.js';
import type { TaskSpec } from '../../domain/task/spec.js';
import { toMillis } from '../../domain/time/instant.js';
import { systemClock, type Clock } from '../clock/clock.js';
import type { ClusterMember, ClusterView, Coordinator } from '../coordination/coordinator.js';
import {
  isDuplicateEventIdError,
  isWrongExpectedVersionError,
  type EventStore,
  type RecordedEvent,
} from '../store/eventStore.js';
import type { FireDelivery, FireOutcome, Target } from '../targets/dispatcher.js';
import { ClusterHousekeeper } from './clusterHousekeeper.js';
import { silentLogger } from './logger.js';
import { decodeTaskEvent, encodeTaskEvent } from './taskCodec.js';
import { TaskRecord } from './taskRecord.js';
import { TaskRetention, type RetentionOptions } from './taskRetention.js';
import { DueAdmission } from './dueAdmission.js';
import { OverloadReport } from './overloadReport.js';
import { TimerQueue } from './timerQueue.js';

export type NodeStatus = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

/** The firing pipeline's queues: what waits in each now, and its bound. */
export type PipelineDepths = {
  /** Decisions under way: appends queued or being written, and what follows them. */
  decisionsInFlight: number;
  maxDecisionsInFlight: number;
  /** Due tasks waiting for room among the decisions (each task at most once: bounded by the task count). */
  dueWaiting: number;
};

/** Who asked for a change: recorded as the event's metadata. */
export type CommandContext = { actor: string; correlationId?: string };

export type SchedulerNodeOptions = {
  nodeId: string;
  store: EventStore;
  /** Built once recovery knows the highest epoch in the log (the local coordinator needs it). */
  coordinator: (recovered: { maxEpoch: number }) => Coordinator;
  target: Target;
  clock?: Clock;
  logger?: Logger;
  /** Events read per page during recovery. @default 5_000 */
  recoveryPageSize?: number;
  /**
   * On stop, how long to wait for fires this node handed to its targets to report an outcome before
   * leaving them to the next owner (who delivers them again). @default 5_000
   */
  drainTimeoutMs?: number;
  /** How often the cluster leader looks for orphaned leases besides reacting to changes. @default 5_000 */
  housekeepingIntervalMs?: number;
  /** How much execution history task streams keep (docs/operations.md, "Retention"). @default everything */
  retention?: RetentionOptions;
  /**
   * Decisions under way at most (due tasks, outcomes, commands); due tasks beyond wait their turn, and
   * the ticks they miss meanwhile are recorded as misfired with cause `overload`. @default 10_000
   */
  maxDecisionsInFlight?: number;
};

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

const MAX_CONFLICT_RETRIES = 8;
/** Events that change where a task may run (a capture replaces the whole state). */
const DEFINITION_EVENTS: ReadonlySet<TaskEvent['type']> = new Set([
  'TaskCreated',
  'TaskUpdated',
  'TaskDeleted',
  'TaskRestored',
  'TaskStateCaptured',
]);

/**
 * The scheduler node: holds one record per task, drives them from one timer queue, and carries out the
 * firing protocol (design §3): decide on the folded state → append with the revision it was folded at
 * → apply → deliver. A conflict means the state was stale: re-read, decide again.
 */
export class SchedulerNode {
  readonly nodeId: string;
  readonly appended$ = new Subject<AppendedBatch>();
  readonly #store: EventStore;
  readonly #target: Target;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #pageSize: number;
  readonly #makeCoordinator: SchedulerNodeOptions['coordinator'];
  readonly #drainTimeout: number;
  readonly #housekeepingInterval: number;
  readonly #records = new Map<string, TaskRecord>();
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Attempts this process has handed to the target (`fireId#attempt`): a lease change re-sends only the others. */
  readonly #delivered = new Set<string>();
  /** Consecutive failed decisions per task, for backing off. */
  readonly #failures = new Map<string, number>();
  readonly #timers: TimerQueue;
  readonly #admission: DueAdmission;
  readonly #overload: OverloadReport;
  readonly #retention: TaskRetention;
  /** Why the last append failed because the store is unavailable; null once one succeeds again. */
  #storeFailing: string | null = null;
  #coordinator: Coordinator | null = null;
  #housekeeper: ClusterHousekeeper | null = null;
  /** Ids of the live members, for the reason of an ownership claim. */
  #live = new Set<string>();
  #subscriptions: Subscription[] = [];
  #status: NodeStatus = 'created';
  #maxEpoch = 0;
  #position = 0n;

  constructor(options: SchedulerNodeOptions) {
    this.nodeId = options.nodeId;
    this.#store = options.store;
    this.#target = options.target;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? silentLogger;
    this.#pageSize = options.recoveryPageSize ?? 5_000;
    this.#makeCoordinator = options.coordinator;
    this.#drainTimeout = options.drainTimeoutMs ?? 5_000;
    this.#housekeepingInterval = options.housekeepingIntervalMs ?? 5_000;
    this.#retention = new TaskRetention({
      store: this.#store,
      clock: this.#clock,
      logger: this.#log,
      options: options.retention ?? {},
      held: (taskId) => {
        const record = this.#records.get(taskId);
        return record && this.#mayFire(record) ? record : undefined;
      },
      capture: async (taskId, head, history) => {
        const events = await this.#execute(taskId, { actor: `node:${this.nodeId}` }, (record) =>
          record.revision === head && this.#mayFire(record)
            ? { type: 'CaptureState', now: this.#clock.now(), history }
            : null,
        );
        return events.length > 0;
      },
    });
    this.#admission = new DueAdmission({
      maxInFlight: options.maxDecisionsInFlight ?? 10_000,
      advance: (taskId, overloaded) => this.#advanceDue(taskId, overloaded),
      running: () => this.#status === 'running',
    });
    this.#overload = new OverloadReport(this.#clock, this.#log);
    this.#timers = new TimerQueue(this.#clock, (ids) => this.#admission.admit(ids));
  }

  get status(): NodeStatus {
    return this.#status;
  }

  /** The cluster as this node sees it; null before it has started. */
  cluster(): ClusterView | null {
    return this.#coordinator?.describe() ?? null;
  }

  /** The live members of the cluster (this node included), now and after every change; empty before start. */
  members$(): Observable<readonly ClusterMember[]> {
    return this.#coordinator?.members$ ?? EMPTY;
  }

  /** Why the node cannot record decisions right now (the store is unavailable), or null. For readiness. */
  get storeProblem(): string | null {
    return this.#storeFailing;
  }

  /** Replays the log into task states, takes the leases, then arms every task and redelivers unfinished fires. */
  async start(): Promise<void> {
    if (this.#status !== 'created') throw new IllegalStateError(`cannot start a node that is ${this.#status}`);
    this.#status = 'starting';
    const started = this.#clock.now();
    const head = await this.#store.headPosition();
    await lastValueFrom(this.#replay$(head), { defaultValue: undefined });
    // A truncation by another process while the log was replayed leaves its capture past `head`: the
    // streams it cut have no state yet (absent at a revision), so they are read now, before anything acts.
    const cut = [...this.#records.values()].filter((r) => r.revision >= 0n && r.state.status === 'absent');
    for (const record of cut) await this.#catchUp(record);
    this.#log.info(
      { tasks: this.#records.size, position: String(this.#position), ms: this.#clock.now() - started },
      'log replayed',
    );

    this.#followLog();
    const coordinator = this.#makeCoordinator({ maxEpoch: this.#maxEpoch });
    this.#coordinator = coordinator;
    for (const record of this.#records.values()) this.#place(record);
    this.#subscriptions.push(
      coordinator.events$.subscribe((e) => e.type === 'leases-changed' && this.#onLeasesChanged()),
      coordinator.members$.subscribe((members) => (this.#live = new Set(members.map((m) => m.id)))),
    );
    await coordinator.start();
    this.#status = 'running';
    this.#onLeasesChanged();
    // One node has no cluster to keep a record of.
    if (coordinator.describe().mode === 'zookeeper') {
      this.#housekeeper = new ClusterHousekeeper({
        store: this.#store,
        coordinator,
        clock: this.#clock,
        logger: this.#log,
        intervalMs: this.#housekeepingInterval,
        slotLoad: (slotCount) => this.#slotLoad(slotCount),
      });
      this.#housekeeper.start();
    }
    this.#log.info({ node: this.nodeId, tasks: this.#records.size, ms: this.#clock.now() - started }, 'node ready');
  }

  /**
   * Leaves gracefully (hand-off): stops firing, lets decisions under way finish, gives up its leases at
   * once (so the others take over without waiting) while recording `TaskReleased` for every task it owned
   * with nothing in flight, then waits, up to the drain timeout, for the fires it handed to its targets to
   * report: their outcomes are still recorded (an outcome needs no lease), while the next owner also
   * delivers them again (at least once, same fire id). The store stays open (it belongs to the caller).
   */
  async stop(): Promise<void> {
    if (this.#status === 'stopped' || this.#status === 'stopping') return;
    const wasRunning = this.#status === 'running';
    this.#status = 'stopping';
    this.#timers.stop();
    await this.#retention.stop();
    await Promise.allSettled([...this.#chains.values()]);
    await this.#housekeeper?.stop();
    // The leases go first, so the others take over at once; the releases are recorded meanwhile, each
    // at the revision it read (a new owner's claim that got in first simply makes it moot).
    const leases = wasRunning ? this.#ownedLeases() : [];
    await this.#coordinator?.stop();
    if (wasRunning) await Promise.all([this.#releaseAll(leases), this.#drain()]);
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#subscriptions = [];
    this.#status = 'stopped';
    this.appended$.complete();
  }

  /** Waits, up to the drain timeout, until no attempt this process handed to a target still awaits its outcome. */
  async #drain(): Promise<void> {
    // Real time, not the injected clock: a simulated clock that nobody advances must not hold up a stop.
    const deadline = Date.now() + this.#drainTimeout;
    const pending = (): boolean => {
      const now = this.#clock.now();
      for (const record of this.#records.values()) {
        for (const fire of record.state.inFlight) {
          if (fire.deadline !== null && fire.deadline > now && this.#delivered.has(`${fire.fireId}#${fire.attempt}`))
            return true;
        }
      }
      return false;
    };
    while (pending() && Date.now() < deadline) await new Promise<void>((resolve) => setTimeout(resolve, 50));
    await Promise.allSettled([...this.#chains.values()]);
  }

  /** The tasks this node owns under the leases it holds now, with nothing in flight. */
  #ownedLeases(): Array<{ taskId: string; lease: DomainLease }> {
    const coordinator = this.#coordinator;
    const owned: Array<{ taskId: string; lease: DomainLease }> = [];
    if (!coordinator) return owned;
    for (const record of this.#records.values()) {
      const owner = record.state.owner;
      if (!owner || owner.node !== this.nodeId || record.state.inFlight.length > 0) continue;
      const lease = coordinator.leaseFor(record.taskId);
      if (lease && lease.epoch === owner.epoch) owned.push({ taskId: record.taskId, lease });
    }
    return owned;
  }

  /** Records `TaskReleased` for each of those tasks: a graceful hand-off the next owner records as `drain`. */
  async #releaseAll(owned: ReadonlyArray<{ taskId: string; lease: DomainLease }>): Promise<void> {
    const ctx = { actor: `node:${this.nodeId}` };
    const results = await Promise.allSettled(
      owned.map(({ taskId, lease }) =>
        this.#execute(taskId, ctx, () => ({ type: 'ReleaseTask', now: this.#clock.now(), lease, reason: 'shutdown' })),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected').length;
    this.#log.info({ released: results.length - failed, failed }, 'tasks released');
  }

  /** Live tasks per slot, pinned ones excluded (they are held through leases of their own). */
  #slotLoad(slotCount: number): Uint32Array {
    const load = new Uint32Array(slotCount);
    for (const record of this.#records.values()) {
      const { status, spec } = record.state;
      if ((status === 'active' || status === 'paused') && !isPinned(spec?.runOn)) load[record.slotIn(slotCount)]!++;
    }
    return load;
  }

  get(taskId: string): TaskRecord | undefined {
    const record = this.#records.get(taskId);
    return record && record.state.status !== 'absent' ? record : undefined;
  }

  tasks(): IterableIterator<TaskRecord> {
    return this.#records.values();
  }

  get taskCount(): number {
    return this.#records.size;
  }

  /** The firing pipeline's queues: their depth now and their bound, for metrics. */
  pipeline(): PipelineDepths {
    return {
      decisionsInFlight: this.#admission.inFlight,
      maxDecisionsInFlight: this.#admission.maxInFlight,
      dueWaiting: this.#admission.waiting,
    };
  }

  /** When the node will next act on a task, as armed in its timer queue. */
  wakeAt(taskId: string): number | undefined {
    return this.#timers.dueAt(taskId);
  }

  createTask(spec: TaskSpec, ctx: CommandContext, reason?: string): Promise<TaskRecord> {
    return this.#command(spec.id, ctx, (now) => ({ type: 'CreateTask', spec, now, reason }));
  }

  updateTask(spec: TaskSpec, ctx: CommandContext, reason?: string): Promise<TaskRecord> {
    return this.#command(spec.id, ctx, (now) => ({ type: 'UpdateTask', spec, now, reason }));
  }

  pauseTask(taskId: string, ctx: CommandContext, reason?: string): Promise<TaskRecord> {
    return this.#command(taskId, ctx, (now) => ({ type: 'PauseTask', now, reason }));
  }

  resumeTask(taskId: string, ctx: CommandContext, reason?: string): Promise<TaskRecord> {
    return this.#command(taskId, ctx, (now) => ({ type: 'ResumeTask', now, reason }));
  }

  deleteTask(taskId: string, ctx: CommandContext, reason?: string): Promise<TaskRecord> {
    return this.#command(taskId, ctx, (now) => ({ type: 'DeleteTask', now, reason }));
  }

  restoreTask(taskId: string, ctx: CommandContext, reason?: string): Promise<TaskRecord> {
    return this.#command(taskId, ctx, (now) => ({ type: 'RestoreTask', now, reason }));
  }

  /** Fires the task now, outside its schedule. Resolves with the fire's id. */
  async triggerTask(taskId: string, ctx: CommandContext, reason?: string): Promise<string> {
    this.#mustRun();
    // The lease is read when the decision runs (after earlier ones), not when the request arrived.
    const events = await this.#execute(taskId, ctx, () => {
      const lease = this.#claimingLease(taskId);
      if (!lease)
        throw new IllegalStateError(`this node does not hold task '${taskId}' and cannot fire it now`, {
          taskId,
          node: this.nodeId,
        });
      return { type: 'TriggerTask', now: this.#clock.now(), lease, reason };
    });
    const fired = events.find((e) => e.type === 'TaskFired');
    if (!fired || fired.type !== 'TaskFired') throw new IllegalStateError(`task '${taskId}' was not fired`);
    return fired.data.fireId;
  }

  /** The target's report of an attempt's outcome. */
  reportOutcome(outcome: FireOutcome): Promise<void> {
    const { at, ...rest } = outcome;
    return this.#execute(outcome.taskId, { actor: `node:${this.nodeId}`, correlationId: outcome.fireId }, () => ({
      type: 'RecordOutcome',
      outcome: { ...rest, at },
    })).then(
      () => undefined,
      (err: unknown) => this.#log.error({ err, fireId: outcome.fireId }, 'could not record an outcome'),
    );
  }

  async #command(taskId: string, ctx: CommandContext, build: (now: number) => TaskCommand): Promise<TaskRecord> {
    this.#mustRun();
    await this.#execute(taskId, ctx, () => build(this.#clock.now()));
    return this.#records.get(taskId) as TaskRecord;
  }

  #mustRun(): void {
    if (this.#status !== 'running')
      throw new KairosError(ErrorCode.unavailable, `the node is ${this.#status}, not running; try again shortly`, {
        status: this.#status,
      });
  }

  /** Runs `fn` after every earlier decision about the same task: one decision per task at a time. */
  #serially<T>(taskId: string, fn: () => Promise<T>): Promise<T> {
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

  /** decide → append at the folded revision → apply → effects; on a revision conflict, catch up and decide again. */
  #execute(
    taskId: string,
    ctx: CommandContext,
    build: (record: TaskRecord) => TaskCommand | null,
  ): Promise<TaskEvent[]> {
    return this.#admission.track(
      this.#serially(taskId, async () => {
        for (let conflicts = 0; ; conflicts++) {
          // One record per task, in the map before the append: the log subscription may bring the
          // appended events back before the append resolves, and must find this same record.
          const record = this.#recordOf(taskId);
          const command = build(record);
          if (!command) return [];
          let events: TaskEvent[];
          try {
            events = decide(command, record.state);
          } catch (err) {
            if (isFencedError(err))
              this.#log.warn({ taskId, err: err.message }, 'fenced: a newer owner holds the task');
            this.#settle(record);
            throw err;
          }
          if (events.length === 0) {
            this.#settle(record);
            return events;
          }
          const expected = record.revision;
          try {
            const metadata = {
              actor: ctx.actor,
              ...(ctx.correlationId ? { correlationId: ctx.correlationId } : {}),
              // Where an operator's change was made; the node's own decisions name it as their actor.
              ...(ctx.actor.startsWith('node:') ? {} : { node: this.nodeId }),
            };
            record.appendingThrough = expected + BigInt(events.length);
            const result = await this.#store
              .appendToStream(
                taskStreamOf(taskId),
                events.map((e) => encodeTaskEvent(e, metadata)),
                { expectedRevision: expected < 0n ? 'no_stream' : expected },
              )
              .finally(() => (record.appendingThrough = -1n));
            this.#storeFailing = null;
            const first = result.nextExpectedRevision - BigInt(events.length) + 1n;
            events.forEach((e, i) => this.#applyAt(record, e, first + BigInt(i)));
            this.#effects(record, events);
            this.#settle(record);
            this.appended$.next({ taskId, events, firstRevision: first, position: result.position, actor: ctx.actor });
            return events;
          } catch (err) {
            if (isKairosError(err) && err.code === ErrorCode.unavailable) this.#storeFailing = err.message;
            // Either error means the stream moved on since this state was folded (another node appended,
            // possibly the very same fire): re-read and decide again on what is really there.
            if (
              !(isWrongExpectedVersionError(err) || isDuplicateEventIdError(err)) ||
              conflicts >= MAX_CONFLICT_RETRIES
            )
              throw err;
            await this.#catchUp(record);
          }
        }
      }),
    );
  }

  #recordOf(taskId: string): TaskRecord {
    let record = this.#records.get(taskId);
    if (!record) {
      record = new TaskRecord(taskId);
      this.#records.set(taskId, record);
    }
    return record;
  }

  /** Applies an event only at the next revision: our own append and the log subscription may both bring it. */
  #applyAt(record: TaskRecord, event: TaskEvent, revision: bigint): void {
    if (revision !== record.revision + 1n) return;
    record.apply(event, revision);
    this.#noteEpoch(event);
    if (DEFINITION_EVENTS.has(event.type)) this.#place(record);
    // However the outcome arrived (our append, another process's), the attempt has left the target.
    if (event.type === 'TaskSucceeded' || event.type === 'TaskFailed')
      this.#delivered.delete(`${event.data.fireId}#${event.data.attempt}`);
  }

  /** Tells the coordinator where a live task may run; a deleted task needs no lease of its own. */
  #place(record: TaskRecord): void {
    const { status, spec } = record.state;
    const live = status === 'active' || status === 'paused';
    if (spec?.runOn || !live) this.#coordinator?.place(record.taskId, live ? spec?.runOn : undefined);
  }

  #noteEpoch(event: TaskEvent): void {
    if (event.type === 'TaskAssigned' || event.type === 'TaskReassigned' || event.type === 'TaskFired') {
      if (event.data.epoch > this.#maxEpoch) this.#maxEpoch = event.data.epoch;
    } else if (event.type === 'TaskStateCaptured') {
      // The events that recorded it may be truncated: the single node's next epoch must still exceed it.
      if (event.data.state.epochFloor > this.#maxEpoch) this.#maxEpoch = event.data.state.epochFloor;
    }
  }

  async #catchUp(record: TaskRecord): Promise<void> {
    const events = await this.#store.readStream(taskStreamOf(record.taskId), { fromRevision: record.revision + 1n });
    for (const recorded of events) this.#applyRecorded(record, recorded);
  }

  #applyRecorded(record: TaskRecord, recorded: RecordedEvent): void {
    if (recorded.revision <= record.revision) return;
    // Read from the store, a revision skipped means the stream was truncated there (retention); the
    // capture that follows every truncation brings the state back.
    if (recorded.revision > record.revision + 1n) record.forgetUpTo(recorded.revision - 1n);
    const decoded = decodeTaskEvent(recorded);
    if (decoded.ok) {
      this.#applyAt(record, decoded.event, recorded.revision);
    } else {
      // Skipping keeps the revision moving so one bad event cannot wedge the task; it is reported loudly.
      this.#log.error({ problem: decoded.error }, 'undecodable event in a task stream');
      record.revision = recorded.revision;
    }
  }

  /** Replays every task stream up to `head` in pages, folding with plain `evolve` (no actors, no effects). */
  #replay$(head: bigint) {
    const page = (after: bigint) =>
      defer(() => from(this.#store.readAll({ after, maxCount: this.#pageSize }).then((events) => ({ after, events }))));
    // `expand` re-emits every page it fetches, so folding after it sees them all.
    return page(0n).pipe(
      expand(({ events }) => {
        const last = events.at(-1);
        return last && last.position < head ? page(last.position) : EMPTY;
      }),
      tap(({ events }) => this.#foldPage(events, head)),
    );
  }

  #foldPage(events: readonly RecordedEvent[], head: bigint): void {
    for (const recorded of events) {
      if (recorded.position > head) break;
      this.#position = recorded.position;
      const taskId = taskIdOfStream(recorded.stream);
      if (taskId === undefined) continue;
      const record = this.#recordOf(taskId);
      this.#applyRecorded(record, recorded);
    }
  }

  /** Follows the log from the last position seen; a failed subscription is renewed from there. */
  #followLog(): void {
    let failed = false;
    const subscription = this.#store
      .subscribeToAll({ after: this.#position, streamPrefixes: [TASK_STREAM_PREFIX], known: this.#holds })
      .subscribe({
        next: (e) => this.#follow(e),
        error: (err: unknown) => {
          failed = true;
          this.#log.error({ err, position: String(this.#position) }, 'log subscription failed; renewing it in 1 s');
          this.#subscriptions = this.#subscriptions.filter((s) => !s.closed);
          this.#clock.setTimer(() => {
            if (this.#status === 'starting' || this.#status === 'running') this.#followLog();
          }, 1_000);
        },
      });
    if (!failed) this.#subscriptions.push(subscription);
  }

  /** Whether the node has, or is appending, this revision of a task stream: the log subscription skips those. */
  readonly #holds = (stream: string, revision: bigint): boolean => {
    const taskId = taskIdOfStream(stream);
    const record = taskId === undefined ? undefined : this.#records.get(taskId);
    return record !== undefined && (revision <= record.revision || revision <= record.appendingThrough);
  };

  /** Events appended by anyone (this node included) after recovery. */
  #follow(recorded: RecordedEvent): void {
    this.#position = recorded.position;
    const taskId = taskIdOfStream(recorded.stream);
    if (taskId === undefined) return;
    const record = this.#recordOf(taskId);
    if (recorded.revision <= record.revision) return;
    if (recorded.revision === record.revision + 1n) {
      this.#applyRecorded(record, recorded);
      this.#settle(record);
    } else {
      this.#serially(taskId, async () => {
        await this.#catchUp(record);
        this.#settle(record);
      }).catch((err: unknown) => this.#log.error({ err, taskId }, 'could not catch up with a task stream'));
    }
  }

  #leaseOf(taskId: string): DomainLease | null {
    return this.#status === 'running' ? (this.#coordinator?.leaseFor(taskId) ?? null) : null;
  }

  /**
   * The lease with the reason a claim made under it would record: the recorded owner is this node (a
   * restart, a new session), a live member (the slot moved: rebalance) or gone (node lost). After a
   * graceful release the decider records the hand-off itself.
   */
  #claimingLease(taskId: string): DomainLease | null {
    const lease = this.#leaseOf(taskId);
    const owner = this.#records.get(taskId)?.state.owner;
    if (!lease || !owner || owner.epoch === lease.epoch) return lease;
    const reason = owner.node === this.nodeId ? 'recovered' : this.#live.has(owner.node) ? 'rebalance' : 'node-lost';
    return { ...lease, reason };
  }

  /** Holds the lease, and no newer owner is recorded (else this node is a zombie for the task: fenced). */
  #mayFire(record: TaskRecord, lease = this.#leaseOf(record.taskId)): boolean {
    return lease !== null && record.state.epochFloor <= lease.epoch;
  }

  /** Re-arms the task's wake-up. */
  #settle(record: TaskRecord): void {
    if (this.#status !== 'running') return;
    const lease = this.#leaseOf(record.taskId);
    // Held under another lease meanwhile (say, while pinned elsewhere): this lease needs a newer epoch.
    if (lease && record.state.epochFloor > lease.epoch && record.state.status !== 'deleted')
      this.#coordinator?.renewLease(record.taskId);
    const mayFire = this.#mayFire(record, lease);
    const wake = mayFire ? nextWakeAt(record.state) : null;
    this.#timers.schedule(record.taskId, wake);
    if (mayFire) this.#retention.consider(record);
  }

  #advanceDue(taskId: string, overloaded: boolean): void {
    void this.#execute(taskId, { actor: `node:${this.nodeId}` }, () => {
      const lease = this.#claimingLease(taskId);
      return lease ? { type: 'Advance', now: this.#clock.now(), lease, overloaded } : null;
    }).then(
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
        this.#log.error({ err, taskId, failures }, 'could not advance a task');
        if (this.#records.has(taskId))
          this.#timers.schedule(taskId, this.#clock.now() + Math.min(60_000, 1_000 * 2 ** (failures - 1)));
      },
    );
  }

  #onLeasesChanged(): void {
    if (this.#status !== 'running') return;
    const now = this.#clock.now();
    for (const record of this.#records.values()) {
      this.#settle(record);
      // A fire recorded without an outcome (the node crashed, or its owner was lost) is delivered again;
      // one this process already handed over is still with the target.
      if (!this.#mayFire(record)) continue;
      for (const fire of record.state.inFlight) {
        if (fire.deadline !== null && fire.deadline > now && !this.#delivered.has(`${fire.fireId}#${fire.attempt}`))
          this.#deliver(record, fire.fireId, fire.attempt);
      }
    }
  }

  /** Effects of a durable append, each isolated: one failing delivery must not cost the others theirs. */
  #effects(record: TaskRecord, events: readonly TaskEvent[]): void {
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
        fire.scheduledAt,
        fire.firedAt,
        fire.deadline,
        this.nodeId,
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
        toMillis(d.scheduledAt),
        toMillis(d.firedAt),
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
  scheduledAt: number,
  firedAt: number,
  deadline: number,
  node: string,
): FireDelivery => ({
  taskId: spec.id,
  ...(spec.name ? { taskName: spec.name } : {}),
  fireId,
  attempt,
  trigger,
  scheduledAt: new Date(scheduledAt).toISOString(),
  firedAt: new Date(firedAt).toISOString(),
  deadline,
  payload: spec.payload,
  target: spec.target,
  node,
});
