import { EMPTY, Subject, lastValueFrom, type Observable, type Subscription } from 'rxjs';
import type { Logger } from 'pino';
import { ErrorCode, IllegalStateError, KairosError } from '../../domain/errors/index.js';
import type { Lease, TaskCommand } from '../../domain/task/decide.js';
import type { TaskEvent } from '../../domain/task/events.js';
import type { TaskSpec } from '../../domain/task/spec.js';
import type { Clock } from '../clock/clock.js';
import type { ClusterMember, ClusterView, Coordinator } from '../coordination/coordinator.js';
import type { FireOutcome } from '../targets/dispatcher.js';
import { ClusterHousekeeper } from './clusterHousekeeper.js';
import { FireDeliveries } from './fireDeliveries.js';
import { FiringProtocol, type AppendedBatch, type CommandContext } from './firingProtocol.js';
import { LogFollower } from './logFollower.js';
import { compileNodeOptions, type CompiledNodeOptions, type SchedulerNodeOptions } from './nodeOptions.js';
import { SnapshotKeeper } from './snapshotKeeper.js';
import { TaskLeases } from './taskLeases.js';
import type { TaskRecord } from './taskRecord.js';
import { TaskRecords } from './taskRecords.js';
import { TaskRetention } from './taskRetention.js';
import { WakeScheduler, type PipelineDepths } from './wakeScheduler.js';

export type { AppendedBatch, CommandContext } from './firingProtocol.js';
export type { SchedulerNodeOptions } from './nodeOptions.js';
export type { PipelineDepths } from './wakeScheduler.js';

export type NodeStatus = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Events that change where a task may run (a capture replaces the whole state). */
const DEFINITION_EVENTS: ReadonlySet<TaskEvent['type']> = new Set<TaskEvent['type']>([
  'TaskCreated',
  'TaskUpdated',
  'TaskDeleted',
  'TaskRestored',
  'TaskStateCaptured',
]);

/**
 * The scheduler node (design §3), the stages of its pipeline wired together:
 * - `TaskRecords`: every task's state folded from the log (replayed at start);
 * - `LogFollower`: what anyone appends afterwards;
 * - `TaskLeases`: what this node may fire under the leases its coordinator holds;
 * - `WakeScheduler`: when each task is next due, and the bounded admission of due tasks;
 * - `FiringProtocol`: decide → append at the folded revision → apply → effects, one decision per task;
 * - `FireDeliveries`: recorded fires handed to the target;
 * - `TaskRetention`: captures and truncation of long streams, in the background;
 * - `SnapshotKeeper`: the records saved beside the log, so a start folds only its tail.
 * This class holds the lifecycle (start, graceful stop) and the commands the API calls.
 */
export class SchedulerNode {
  readonly nodeId: string;
  readonly appended$ = new Subject<AppendedBatch>();
  readonly #o: CompiledNodeOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #records: TaskRecords;
  readonly #leases: TaskLeases;
  readonly #deliveries: FireDeliveries;
  readonly #protocol: FiringProtocol;
  readonly #wakes: WakeScheduler;
  readonly #follower: LogFollower;
  readonly #retention: TaskRetention;
  readonly #snapshots: SnapshotKeeper | null;
  #coordinator: Coordinator | null = null;
  #housekeeper: ClusterHousekeeper | null = null;
  #subscriptions: Subscription[] = [];
  #status: NodeStatus = 'created';
  /** The node's own decisions name it as their actor. */
  readonly #asNode: CommandContext;

  constructor(options: SchedulerNodeOptions) {
    const o = (this.#o = compileNodeOptions(options));
    this.nodeId = o.nodeId;
    this.#asNode = { actor: `node:${o.nodeId}` };
    this.#clock = o.clock;
    this.#log = o.logger;
    const running = () => this.#status === 'running';
    const asNode = this.#asNode;
    this.#deliveries = new FireDeliveries({ nodeId: o.nodeId, target: o.target, logger: o.logger });
    this.#records = new TaskRecords({
      store: o.store,
      logger: o.logger,
      pageSize: o.recoveryPageSize,
      applied: (record, event) => {
        if (DEFINITION_EVENTS.has(event.type)) this.#leases.place(record);
        if (event.type === 'TaskSucceeded' || event.type === 'TaskFailed')
          this.#deliveries.outcomeRecorded(event.data.fireId, event.data.attempt);
      },
    });
    this.#leases = new TaskLeases({ nodeId: o.nodeId, records: this.#records, running });
    this.#retention = new TaskRetention({
      store: o.store,
      clock: o.clock,
      logger: o.logger,
      options: o.retention,
      held: (taskId) => {
        const record = this.#records.get(taskId);
        return record && this.#leases.mayFire(record) ? record : undefined;
      },
      capture: async (taskId, head, history) => {
        const events = await this.#protocol.execute(taskId, asNode, (record) =>
          record.revision === head && this.#leases.mayFire(record)
            ? { type: 'CaptureState', now: this.#clock.now(), history }
            : null,
        );
        return events.length > 0;
      },
    });
    this.#wakes = new WakeScheduler({
      clock: o.clock,
      logger: o.logger,
      records: this.#records,
      leases: this.#leases,
      retention: this.#retention,
      maxDecisionsInFlight: o.maxDecisionsInFlight,
      running,
      decide: (taskId, build) => this.#protocol.execute(taskId, asNode, build),
      ahead:
        o.fireLeadMs > 0
          ? {
              lead: o.fireLeadMs,
              decide: (taskId, build) => this.#protocol.decideAhead(taskId, build),
              append: (decided, at) => this.#protocol.appendAhead(decided, at, running),
            }
          : null,
    });
    this.#protocol = new FiringProtocol({
      nodeId: o.nodeId,
      clock: o.clock,
      store: o.store,
      records: this.#records,
      deliveries: this.#deliveries,
      logger: o.logger,
      appended$: this.appended$,
      settle: (record) => this.#wakes.settle(record),
      track: (decisions, count) => this.#wakes.track(decisions, count),
      asNode,
    });
    this.#snapshots = o.snapshot
      ? new SnapshotKeeper(o.snapshot, {
          store: o.store,
          records: this.#records,
          clock: o.clock,
          logger: o.logger,
          settled: () => this.#protocol.settled(),
        })
      : null;
    this.#follower = new LogFollower({
      store: o.store,
      records: this.#records,
      clock: o.clock,
      logger: o.logger,
      settle: (record) => this.#wakes.settle(record),
      serially: (taskId, fn) => this.#protocol.serially(taskId, fn),
      active: () => this.#status === 'starting' || this.#status === 'running',
    });
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
    return this.#protocol.storeProblem;
  }

  /** Replays the log into task states, takes the leases, then arms every task and redelivers unfinished fires. */
  async start(): Promise<void> {
    if (this.#status !== 'created') throw new IllegalStateError(`cannot start a node that is ${this.#status}`);
    this.#status = 'starting';
    const started = this.#clock.now();
    const head = await this.#o.store.headPosition();
    await this.#snapshots?.load();
    await lastValueFrom(this.#records.replay$(head), { defaultValue: undefined });
    // A truncation by another process while the log was replayed leaves its capture past `head`: the
    // streams it cut have no state yet (absent at a revision), so they are read now, before anything acts.
    const cut = [...this.#records.values()].filter((r) => r.revision >= 0n && r.state.status === 'absent');
    for (const record of cut) await this.#records.catchUp(record);
    await this.#records.rereadGapped();
    this.#log.info(
      { tasks: this.#records.size, position: String(this.#records.position), ms: this.#clock.now() - started },
      'log replayed',
    );

    this.#follower.start();
    const coordinator = this.#o.coordinator({ maxEpoch: this.#records.maxEpoch });
    this.#coordinator = coordinator;
    this.#leases.coordinator = coordinator;
    for (const record of this.#records.values()) this.#leases.place(record);
    this.#subscriptions.push(
      coordinator.events$.subscribe((e) => e.type === 'leases-changed' && this.#onLeasesChanged()),
      coordinator.members$.subscribe((members) => (this.#leases.liveMembers = members.map((m) => m.id))),
    );
    await coordinator.start();
    this.#status = 'running';
    this.#onLeasesChanged();
    // One node has no cluster to keep a record of.
    if (coordinator.describe().mode === 'zookeeper') {
      this.#housekeeper = new ClusterHousekeeper({
        store: this.#o.store,
        coordinator,
        clock: this.#clock,
        logger: this.#log,
        intervalMs: this.#o.housekeepingIntervalMs,
        slotLoad: (slotCount) => this.#leases.slotLoad(slotCount),
      });
      this.#housekeeper.start();
    }
    this.#snapshots?.start();
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
    this.#wakes.stop();
    this.#snapshots?.stop();
    await this.#retention.stop();
    await this.#protocol.settled();
    await this.#housekeeper?.stop();
    // The leases go first, so the others take over at once; the releases are recorded meanwhile, each
    // at the revision it read (a new owner's claim that got in first simply makes it moot).
    const leases = wasRunning ? this.#leases.owned() : [];
    await this.#coordinator?.stop();
    if (wasRunning) await Promise.all([this.#releaseAll(leases), this.#drain()]);
    this.#follower.stop();
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#subscriptions = [];
    // Decisions settled and the log no longer followed: the next start folds only what comes after.
    if (wasRunning) await this.#snapshots?.save();
    this.#status = 'stopped';
    this.appended$.complete();
  }

  /** Waits, up to the drain timeout, until no attempt this process handed to a target still awaits its outcome. */
  async #drain(): Promise<void> {
    // Real time, not the injected clock: a simulated clock that nobody advances must not hold up a stop.
    const deadline = Date.now() + this.#o.drainTimeoutMs;
    while (this.#deliveries.awaiting(this.#records.values(), this.#clock.now()) && Date.now() < deadline)
      await new Promise<void>((resolve) => setTimeout(resolve, 50));
    await this.#protocol.settled();
  }

  /** Records `TaskReleased` for each of those tasks: a graceful hand-off the next owner records as `drain`. */
  async #releaseAll(owned: ReadonlyArray<{ taskId: string; lease: Lease }>): Promise<void> {
    const results = await Promise.allSettled(
      owned.map(({ taskId, lease }) =>
        this.#protocol.execute(taskId, this.#asNode, () => ({
          type: 'ReleaseTask',
          now: this.#clock.now(),
          lease,
          reason: 'shutdown',
        })),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected').length;
    this.#log.info({ released: results.length - failed, failed }, 'tasks released');
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
    return this.#wakes.pipeline();
  }

  /** When the node will next act on a task, as armed in its timer queue. */
  wakeAt(taskId: string): number | undefined {
    return this.#wakes.wakeAt(taskId);
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
    const events = await this.#protocol.execute(taskId, ctx, () => {
      const lease = this.#leases.claimingLease(taskId);
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
    return this.#protocol
      .execute(
        outcome.taskId,
        { actor: this.#asNode.actor, correlationId: outcome.fireId },
        () => ({ type: 'RecordOutcome', outcome }),
        this.#wakes.releaseTurn(),
      )
      .then(
        () => undefined,
        (err: unknown) => this.#log.error({ err, fireId: outcome.fireId }, 'could not record an outcome'),
      );
  }

  async #command(taskId: string, ctx: CommandContext, build: (now: number) => TaskCommand): Promise<TaskRecord> {
    this.#mustRun();
    await this.#protocol.execute(taskId, ctx, () => build(this.#clock.now()));
    return this.#records.get(taskId) as TaskRecord;
  }

  #mustRun(): void {
    if (this.#status !== 'running')
      throw new KairosError(ErrorCode.unavailable, `the node is ${this.#status}, not running; try again shortly`, {
        status: this.#status,
      });
  }

  /** Every task re-armed under the new leases; fires recorded without an outcome go out again. */
  #onLeasesChanged(): void {
    if (this.#status !== 'running') return;
    const now = this.#clock.now();
    for (const record of this.#records.values()) {
      this.#wakes.settle(record);
      if (this.#leases.mayFire(record)) this.#deliveries.redeliver(record, now);
    }
  }
}
