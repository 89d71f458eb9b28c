import { BehaviorSubject, Subject, type Subscription } from 'rxjs';
import { DEFAULT_SLOT_COUNT, Member, assignSlots, checkSlotCount, slotOf } from '../../../domain/cluster/index.js';
import { AlreadyExistsError, IllegalStateError } from '../../../domain/errors/index.js';
import type {
  ClusterMember,
  ClusterView,
  ConnectionState,
  Coordinator,
  CoordinatorEvent,
  Lease,
} from '../coordinator.js';
import { CreateMode, type ZkClient, type ZkClientOptions, connectZk } from './zkClient.js';
import { isZkError } from './zkErrors.js';

export type ZooKeeperCoordinatorOptions = {
  nodeId: string;
  /** What this node publishes in `members/<nodeId>`; the weight defaults to 1. */
  member?: { address?: string; weight?: number; labels?: Record<string, string>; version?: string };
  /**
   * The cluster's slot count. The first node to start stores it at `/config`; a later node whose option
   * differs refuses to start. Absent: the stored count, or DEFAULT_SLOT_COUNT for a new cluster.
   */
  slotCount?: number;
  /** How to reach ZooKeeper: connection options (chroot in the string), or a factory of fresh sessions. */
  zk: ZkClientOptions | (() => Promise<ZkClient>);
};

const MEMBERS = '/members';
const SLOTS = '/slots';
const CONFIG = '/config';

type SessionState = {
  readonly client: ZkClient;
  readonly subscriptions: Subscription[];
  members: Member[] | null;
  present: Set<number> | null;
  /** Resolves after the session's first complete reconciliation. */
  readonly ready: Promise<void>;
  markReady: () => void;
};

/**
 * The coordination port on ZooKeeper (design §4): an ephemeral `members/<nodeId>`, the slot assignment
 * computed by every node from the live member set, and one ephemeral lease `slots/<n>` per held slot whose
 * `czxid` is the fencing epoch. Leases count only while the connection is `connected` (design §3.4).
 *
 * Every lease change under `slots/` and every membership change re-runs one serialized reconciliation:
 * release slots no longer assigned here, create the leases of assigned slots that nobody holds.
 */
export class ZooKeeperCoordinator implements Coordinator {
  readonly nodeId: string;
  readonly events$ = new Subject<CoordinatorEvent>();
  readonly members$ = new BehaviorSubject<readonly ClusterMember[]>([]);
  readonly #options: ZooKeeperCoordinatorOptions;
  readonly #member: Member;
  #slotCount = 0;
  #session: SessionState | null = null;
  #connection: ConnectionState = 'lost';
  #held = new Map<number, Lease>();
  /** Slots whose create had an unknown outcome: the lease may be ours. */
  #uncertain = new Set<number>();
  /** Slots given up whose lease znode may still need deleting. */
  #releasing = new Set<number>();
  #dirty = false;
  #loop: Promise<void> | null = null;
  #stopped = false;

  constructor(options: ZooKeeperCoordinatorOptions) {
    this.#options = options;
    this.nodeId = options.nodeId;
    this.#member = Member.parse({ id: options.nodeId, ...options.member });
    if (options.slotCount !== undefined) checkSlotCount(options.slotCount);
  }

  /** The cluster's slot count (known once started). */
  get slotCount(): number {
    return this.#slotCount;
  }

  get connection(): ConnectionState {
    return this.#connection;
  }

  /** The slots this node holds now, with their epochs (status pages and tests). */
  heldSlots(): ReadonlyMap<number, Lease> {
    return new Map(this.#held);
  }

  async start(): Promise<void> {
    if (this.#stopped) throw new IllegalStateError(`coordinator ${this.nodeId} was stopped`);
    const session = await this.#openSession(false);
    await session?.ready;
  }

  leaseFor(taskId: string): Lease | null {
    if (this.#connection !== 'connected' || this.#slotCount === 0) return null;
    return this.#held.get(slotOf(taskId, this.#slotCount)) ?? null;
  }

  /** Resolves once the reconciliation in progress, if any, has finished. */
  describe(): ClusterView {
    return {
      mode: 'zookeeper',
      nodeId: this.nodeId,
      connection: this.#connection,
      slotCount: this.#slotCount || null,
      members: [...this.members$.value],
      heldSlots: this.#held.size,
    };
  }

  async settled(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const session = this.#session;
    this.#session = null;
    const held = [...this.#held.keys()];
    this.#held.clear();
    this.events$.next({ type: 'leases-changed' });
    if (session) {
      session.markReady();
      session.subscriptions.forEach((s) => s.unsubscribe());
      await this.#loop?.catch(() => undefined);
      try {
        await session.client.delete(`${MEMBERS}/${this.nodeId}`).catch(ignoreMissing);
        await Promise.all(held.map((slot) => this.#deleteOwnLease(session.client, slot)));
      } catch {
        // Closing the session below removes every ephemeral node anyway.
      }
      await session.client.close();
    }
    this.events$.complete();
    this.members$.complete();
  }

  async #connect(): Promise<ZkClient> {
    const zk = this.#options.zk;
    return typeof zk === 'function' ? zk() : connectZk(zk);
  }

  /** Connects, checks the slot count, registers the member and starts watching; `rejoin` after a loss. */
  async #openSession(rejoin: boolean): Promise<SessionState | null> {
    const client = await this.#connect();
    try {
      await client.mkdirp(MEMBERS);
      await client.mkdirp(SLOTS);
      this.#slotCount = await this.#clusterSlotCount(client);
      await this.#register(client, rejoin);
    } catch (err) {
      await client.close();
      throw err;
    }
    if (this.#stopped) {
      await client.close();
      return null;
    }
    let markReady = (): void => undefined;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    const session: SessionState = { client, subscriptions: [], members: null, present: null, ready, markReady };
    this.#session = session;
    this.#connection = 'connected';
    this.events$.next({ type: 'connection', state: 'connected' });
    session.subscriptions.push(
      client.state$.subscribe((state) => this.#onState(session, state)),
      this.#watch(session, MEMBERS, async (names, current) => {
        const members = await this.#readMembers(client, names);
        if (!current()) return;
        session.members = members;
        this.members$.next(members.map(memberView));
      }),
      this.#watch(session, SLOTS, async (names) => {
        session.present = new Set(names.map(Number).filter(Number.isInteger));
      }),
    );
    return session;
  }

  async #clusterSlotCount(client: ZkClient): Promise<number> {
    const wanted = this.#options.slotCount;
    try {
      await client.create(CONFIG, JSON.stringify({ slotCount: wanted ?? DEFAULT_SLOT_COUNT }));
      return wanted ?? DEFAULT_SLOT_COUNT;
    } catch (err) {
      if (!isZkError(err, 'NODEEXISTS')) throw err;
    }
    const stored = await client.get(CONFIG);
    const slotCount = stored ? (JSON.parse(stored.data.toString()) as { slotCount?: unknown }).slotCount : undefined;
    if (typeof slotCount !== 'number') throw new IllegalStateError(`ZooKeeper ${CONFIG} holds no slot count`);
    checkSlotCount(slotCount);
    if (wanted !== undefined && wanted !== slotCount)
      throw new IllegalStateError(
        `slotCount ${wanted} does not match the cluster's slot count ${slotCount} (fixed at cluster creation, stored in ZooKeeper ${CONFIG})`,
        { slotCount: wanted, clusterSlotCount: slotCount },
      );
    return slotCount;
  }

  /**
   * Creates `members/<nodeId>`. A live member of the same id refuses the start; after a session loss the
   * old session's node may outlive it briefly (the servers expire it a tick later), so a rejoin waits.
   */
  async #register(client: ZkClient, rejoin: boolean): Promise<void> {
    const path = `${MEMBERS}/${this.nodeId}`;
    const deadline = Date.now() + 2 * client.sessionTimeoutMs;
    for (;;) {
      try {
        await client.create(path, JSON.stringify(this.#member), CreateMode.ephemeral);
        return;
      } catch (err) {
        if (!isZkError(err, 'NODEEXISTS')) throw err;
        if (!rejoin || Date.now() > deadline)
          throw new AlreadyExistsError(
            'cluster member',
            this.nodeId,
            'another live node uses this node id; give each node its own id',
          );
      }
      await sleep(100);
    }
  }

  async #readMembers(client: ZkClient, names: readonly string[]): Promise<Member[]> {
    const members: Member[] = [];
    for (const name of names) {
      const node = await client.get(`${MEMBERS}/${name}`);
      if (!node) continue;
      let raw: unknown;
      try {
        raw = JSON.parse(node.data.toString());
      } catch {
        continue;
      }
      const parsed = Member.safeParse(raw);
      if (parsed.success && parsed.data.id === name) members.push(parsed.data);
    }
    return members;
  }

  /**
   * Follows the children of `path`. `apply` reads what it needs and stores it only while `current()`
   * (no newer list arrived meanwhile); a failed `apply` is retried, a failed watch re-armed, while the
   * session is current.
   */
  #watch(
    session: SessionState,
    path: string,
    apply: (names: string[], current: () => boolean) => Promise<void>,
  ): Subscription {
    let latest: string[] | null = null;
    const run = (names: string[]): void => {
      const current = (): boolean => latest === names && this.#session === session && !this.#stopped;
      apply(names, current).then(
        () => this.#schedule(session),
        () => {
          if (current()) setTimeout(() => current() && run(names), 250);
        },
      );
    };
    return session.client.children$(path).subscribe({
      next: (names) => {
        latest = names;
        run(names);
      },
      error: () => {
        if (this.#session !== session || this.#stopped || session.client.state !== 'connected') return;
        setTimeout(() => {
          if (this.#session === session) session.subscriptions.push(this.#watch(session, path, apply));
        }, 500);
      },
    });
  }

  #onState(session: SessionState, state: ConnectionState): void {
    if (this.#session !== session || this.#stopped || state === this.#connection) return;
    this.#connection = state;
    this.events$.next({ type: 'connection', state });
    if (state === 'lost') {
      this.#session = null;
      session.markReady();
      session.subscriptions.forEach((s) => s.unsubscribe());
      this.#held.clear();
      this.#uncertain.clear();
      this.#releasing.clear();
      void session.client.close();
    }
    this.events$.next({ type: 'leases-changed' });
    if (state === 'connected') this.#schedule(session);
    if (state === 'lost') void this.#rejoin();
  }

  async #rejoin(): Promise<void> {
    for (let attempt = 0; !this.#stopped && !this.#session; attempt++) {
      try {
        await this.#openSession(true);
        return;
      } catch {
        await sleep(Math.min(250 * 2 ** attempt, 5_000));
      }
    }
  }

  #schedule(session: SessionState): void {
    this.#dirty = true;
    if (this.#loop) return;
    this.#loop = (async () => {
      while (this.#dirty && this.#session === session && !this.#stopped) {
        this.#dirty = false;
        try {
          await this.#reconcile(session);
        } catch {
          // Connection trouble: the next watch event or reconnection schedules another pass.
        }
      }
    })().finally(() => {
      this.#loop = null;
      if (this.#dirty && this.#session && !this.#stopped) this.#schedule(this.#session);
    });
  }

  async #reconcile(session: SessionState): Promise<void> {
    const { members, present, client } = session;
    if (!members || !present || session.client.state !== 'connected') return;
    const owners = assignSlots(this.#slotCount, members);
    let changed = false;
    for (const slot of [...this.#held.keys()]) {
      if (owners[slot] === this.nodeId) continue;
      this.#held.delete(slot);
      this.#releasing.add(slot);
      changed = true;
    }
    if (changed) this.events$.next({ type: 'leases-changed' });
    await Promise.all(
      [...this.#releasing].map(async (slot) => {
        await this.#deleteOwnLease(client, slot);
        this.#releasing.delete(slot);
      }),
    );
    const wanted: number[] = [];
    for (let slot = 0; slot < owners.length; slot++) {
      if (owners[slot] !== this.nodeId || this.#held.has(slot)) continue;
      if (!present.has(slot) || this.#uncertain.has(slot)) wanted.push(slot);
    }
    const acquired = await Promise.all(wanted.map((slot) => this.#acquire(client, slot)));
    if (this.#session !== session) return;
    let gained = false;
    acquired.forEach((epoch, i) => {
      const slot = wanted[i]!;
      if (epoch === null) return;
      if (session.members && assignSlots(this.#slotCount, session.members)[slot] !== this.nodeId) {
        this.#releasing.add(slot);
        this.#dirty = true;
        return;
      }
      this.#held.set(slot, { node: this.nodeId, epoch });
      gained = true;
    });
    if (gained) this.events$.next({ type: 'leases-changed' });
    session.markReady();
  }

  /** Creates the lease of `slot`; its epoch, or null when another session holds it. */
  async #acquire(client: ZkClient, slot: number): Promise<number | null> {
    const path = `${SLOTS}/${slot}`;
    try {
      await client.create(path, this.nodeId, CreateMode.ephemeral);
    } catch (err) {
      if (isZkError(err, 'NODEEXISTS')) {
        // Ours when an earlier create succeeded but its answer was lost with the connection.
      } else {
        this.#uncertain.add(slot);
        throw err;
      }
    }
    const stat = await client.exists(path);
    this.#uncertain.delete(slot);
    return stat && stat.ephemeralOwner === client.sessionId ? stat.czxid : null;
  }

  /** Deletes the lease of `slot` only if this session holds it (never another node's newer lease). */
  async #deleteOwnLease(client: ZkClient, slot: number): Promise<void> {
    const path = `${SLOTS}/${slot}`;
    const stat = await client.exists(path);
    if (!stat || stat.ephemeralOwner !== client.sessionId) return;
    await client.delete(path, stat.version).catch(ignoreMissing);
  }
}

const memberView = (m: Member): ClusterMember => ({
  id: m.id,
  ...(m.address ? { address: m.address } : {}),
  weight: m.weight,
  labels: m.labels,
});

const ignoreMissing = (err: unknown): void => {
  if (!isZkError(err, 'NONODE')) throw err;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
