import { randomUUID } from 'node:crypto';
import { combineLatest, type Subscription } from 'rxjs';
import type { Logger } from 'pino';
import {
  ClusterEvent,
  type ClusterLogState,
  decideCluster,
  emptyClusterLog,
  evolveCluster,
  slotMovesOf,
} from '../../domain/cluster/index.js';
import { CLUSTER_STREAM } from '../../domain/task/events.js';
import { toIso } from '../../domain/time/instant.js';
import type { Clock, TimerHandle } from '../clock/clock.js';
import type { Coordinator } from '../coordination/coordinator.js';
import { isWrongExpectedVersionError, type EventStore } from '../store/eventStore.js';

export type ClusterHousekeeperOptions = {
  store: EventStore;
  coordinator: Coordinator;
  clock: Clock;
  logger: Logger;
  /** How often the leader scans for orphaned leases and unplaceable tasks besides reacting to changes. */
  intervalMs: number;
  /** Tasks per slot (pinned ones excluded), for the balanced assignment the leader publishes. */
  slotLoad: (slotCount: number) => ArrayLike<number>;
};

/**
 * The leader's duties (design §4): publish the slot assignment balanced by task count, keep
 * `kairos-cluster` up to date — leader changes, members that joined and left, the slot moves the
 * assignment makes, pinned tasks no live node may hold — and remove leases left by sessions of no live
 * member. Runs on every node, acts only while this node leads. What to record
 * is decided by comparing the stream's own fold with what the coordinator sees (`decideCluster`), and the
 * append is made at the folded revision, so two nodes that both believe they lead cannot record twice.
 */
export class ClusterHousekeeper {
  readonly #o: ClusterHousekeeperOptions;
  #state: ClusterLogState = emptyClusterLog;
  #revision = -1n;
  #subscription: Subscription | null = null;
  #timer: TimerHandle | null = null;
  #running: Promise<void> | null = null;
  /** What the leader did in ZooKeeper (slot moves, orphans removed) but could not record yet. */
  #unrecorded: ClusterEvent[] = [];
  #again = false;
  #stopped = false;

  constructor(options: ClusterHousekeeperOptions) {
    this.#o = options;
  }

  /** What the stream has recorded, as this node last folded it (tests and status pages). */
  get recorded(): ClusterLogState {
    return this.#state;
  }

  start(): void {
    const { coordinator } = this.#o;
    this.#subscription = combineLatest([coordinator.leader$, coordinator.members$]).subscribe(([leader]) => {
      if (leader === coordinator.nodeId) this.poke();
    });
    this.#subscription.add(
      coordinator.events$.subscribe((e) => {
        if (e.type === 'unplaceable-changed' && coordinator.describe().leader === coordinator.nodeId) this.poke();
      }),
    );
    this.#tick();
  }

  /** Asks for a pass soon (something the leader records may have changed). */
  poke(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#pass()
      .catch((err: unknown) => {
        if (!isWrongExpectedVersionError(err)) this.#o.logger.warn({ err }, 'cluster housekeeping failed');
        // Another writer moved the stream on (a leader about to lose its place): fold it and look again.
        this.#again = true;
      })
      .finally(() => {
        this.#running = null;
        if (this.#again && !this.#stopped) {
          this.#again = false;
          this.#o.clock.setTimer(() => this.poke(), 200);
        }
      });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#subscription?.unsubscribe();
    this.#timer?.cancel();
    await this.#running;
  }

  #tick(): void {
    this.#timer = this.#o.clock.setTimer(() => {
      if (this.#stopped) return;
      if (this.#o.coordinator.describe().leader === this.#o.coordinator.nodeId) this.poke();
      this.#tick();
    }, this.#o.intervalMs);
  }

  async #pass(): Promise<void> {
    const { coordinator, store, clock, logger } = this.#o;
    const view = coordinator.describe();
    if (view.leader !== coordinator.nodeId || view.connection !== 'connected' || view.slotCount === null) return;
    await this.#catchUp();
    const events: ClusterEvent[] = decideCluster(this.#state, {
      leader: coordinator.nodeId,
      members: view.members,
      unplaceable: view.unplaceable,
      now: clock.now(),
    });
    const published = await coordinator.publishAssignment(this.#o.slotLoad(view.slotCount));
    const moves = published && slotMovesOf(published.before, published.after, clock.now());
    if (moves) this.#unrecorded.push({ type: 'SlotsMoved', data: moves });
    for (const orphan of await coordinator.removeOrphanedLeases()) {
      logger.warn(orphan, 'removed a lease held by the session of no live member');
      this.#unrecorded.push({ type: 'OrphanedLeaseRemoved', data: { v: 1, ...orphan, at: toIso(clock.now()) } });
    }
    // Done in ZooKeeper already: kept until an append records them (the store may be down, or a conflict
    // with a former leader's last append may need one more pass).
    events.push(...this.#unrecorded);
    if (events.length === 0) return;
    for (const e of events) {
      if (e.type === 'TasksUnplaceable' && e.data.count > 0)
        logger.warn({ count: e.data.count, taskIds: e.data.taskIds }, 'pinned tasks that no live node may hold');
    }
    const result = await store.appendToStream(
      CLUSTER_STREAM,
      events.map((e) => ({
        id: randomUUID(),
        type: e.type,
        data: e.data,
        metadata: { actor: `node:${coordinator.nodeId}` },
      })),
      { expectedRevision: this.#revision < 0n ? 'no_stream' : this.#revision },
    );
    this.#unrecorded = [];
    for (const e of events) this.#state = evolveCluster(this.#state, e);
    this.#revision = result.nextExpectedRevision;
  }

  async #catchUp(): Promise<void> {
    const recorded = await this.#o.store.readStream(CLUSTER_STREAM, { fromRevision: this.#revision + 1n });
    for (const r of recorded) {
      const parsed = ClusterEvent.safeParse({ type: r.type, data: r.data });
      if (parsed.success) this.#state = evolveCluster(this.#state, parsed.data);
      else this.#o.logger.error({ stream: r.stream, revision: String(r.revision) }, 'undecodable cluster event');
      this.#revision = r.revision;
    }
  }
}
