import { BehaviorSubject, Subject, type Subscription } from 'rxjs';
import {
  DEFAULT_SLOT_COUNT,
  Member,
  type PublishedAssignment,
  type RunOn,
  assignSlots,
  balanceSlots,
  checkSlotCount,
  isPinned,
  ownerOf,
  slotOf,
} from '../../../domain/cluster/index.js';
import { AlreadyExistsError, IllegalStateError } from '../../../domain/errors/index.js';
import type {
  ClusterMember,
  ClusterView,
  ConnectionState,
  Coordinator,
  CoordinatorEvent,
  Lease,
  OrphanedLease,
} from '../coordinator.js';
import { CreateMode, type ZkClient, type ZkClientOptions, type ZkStat, connectZk } from './zkClient.js';
import { isZkError } from './zkErrors.js';
import { z } from 'zod';

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
  /** Where trouble the coordinator works around goes (a failed pass, a lease that keeps needing renewal). */
  logger?: CoordinatorLogger;
};

type CoordinatorLogger = {
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
};
const silent: CoordinatorLogger = { warn: () => undefined, error: () => undefined };

const MEMBERS = '/members';
const SLOTS = '/slots';
const PINNED = '/pinned';
const ELECTION = '/election';
const LEADER = '/leader';
const ASSIGNMENT = '/assignment';
const CONFIG = '/config';
/** Renewals of one lease back off from 1 s to a minute: a fence that keeps coming back must not churn ZooKeeper. */
const RENEW_BACKOFF_MS = 1_000;
const RENEW_BACKOFF_MAX_MS = 60_000;
/** More renewals of one lease than this within a minute means epochs below the log's: say so. */
const RENEW_ALARM = 3;

type SessionState = {
  readonly client: ZkClient;
  readonly subscriptions: Subscription[];
  members: Member[] | null;
  /** Lease paths present under `slots/` and `pinned/`, from their children watches. */
  slots: Set<string> | null;
  pinned: Set<string> | null;
  /** This session's `election/n_<seq>` name once created. */
  candidate: string | null;
  /** The leader's published assignment and the version of its znode; null while there is none. */
  assignment: { published: PublishedAssignment; version: number } | null;
  /** Resolves after the session's first complete reconciliation. */
  readonly ready: Promise<void>;
  markReady: () => void;
};

/**
 * The coordination port on ZooKeeper (design §4): an ephemeral `members/<nodeId>`, one ephemeral lease
 * per held slot (`slots/<n>`) or pinned task (`pinned/<taskId>`) whose `czxid` is the fencing epoch, and
 * leader election. Leases count only while the connection is `connected` (design §3.4).
 *
 * Who should hold a slot: the leader's published `assignment` (balanced by task count) while that owner
 * is a live member, else the rendezvous winner among the live members — computed alike by every node,
 * so the slots of a member that died move without waiting for a leader.
 *
 * Every lease change, membership change, new assignment, placement or renewal re-runs one serialized
 * reconciliation: release what is no longer assigned here, create the leases of what is and nobody holds.
 *
 * Leader election: each node creates an ephemeral-sequential `election/n_<session>_` and watches only the
 * one just before its own (no herd); the first one publishes itself in the ephemeral `leader`, which every
 * node follows (`leader$`).
 */
export class ZooKeeperCoordinator implements Coordinator {
  readonly nodeId: string;
  readonly events$ = new Subject<CoordinatorEvent>();
  readonly members$ = new BehaviorSubject<readonly ClusterMember[]>([]);
  readonly leader$ = new BehaviorSubject<string | null>(null);
  readonly #options: ZooKeeperCoordinatorOptions;
  readonly #member: Member;
  #slotCount = 0;
  #session: SessionState | null = null;
  #connection: ConnectionState = 'lost';
  /** Held leases by znode path. */
  #held = new Map<string, Lease>();
  /** Leases whose create had an unknown outcome: they may be ours. */
  #uncertain = new Set<string>();
  /** Leases given up whose znode may still need deleting. */
  #releasing = new Set<string>();
  /** Leases to re-create for a higher epoch, each with the time it may be renewed from. */
  #renew = new Map<string, number>();
  /** Recent renewals per lease (count within a minute, last time), for backing off. */
  #renewals = new Map<string, { count: number; at: number }>();
  #renewTimer: NodeJS.Timeout | undefined;
  readonly #log: CoordinatorLogger;
  /** Pinned tasks and where they may run. */
  #pins = new Map<string, RunOn>();
  #unplaceable: string[] = [];
  /** Leases seen without a live member's session at the last scan, with `session@czxid`. */
  #orphanSuspects = new Map<string, string>();
  #dirty = false;
  #loop: Promise<void> | null = null;
  #stopped = false;

  constructor(options: ZooKeeperCoordinatorOptions) {
    this.#options = options;
    this.nodeId = options.nodeId;
    this.#member = Member.parse({ id: options.nodeId, ...options.member });
    this.#log = options.logger ?? silent;
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
    const slots = new Map<number, Lease>();
    for (const [path, lease] of this.#held) if (path.startsWith(`${SLOTS}/`)) slots.set(slotOfPath(path), lease);
    return slots;
  }

  async start(): Promise<void> {
    if (this.#stopped) throw new IllegalStateError(`coordinator ${this.nodeId} was stopped`);
    const session = await this.#openSession(false);
    await session?.ready;
  }

  leaseFor(taskId: string): Lease | null {
    if (this.#connection !== 'connected' || this.#slotCount === 0) return null;
    return this.#held.get(this.#leasePathOf(taskId)) ?? null;
  }

  place(taskId: string, runOn: RunOn | undefined): void {
    if (isPinned(runOn)) this.#pins.set(taskId, runOn!);
    else if (!this.#pins.delete(taskId)) return;
    if (this.#session) this.#schedule(this.#session);
  }

  renewLease(taskId: string): void {
    const path = this.#leasePathOf(taskId);
    if (!this.#held.has(path) || this.#renew.has(path)) return;
    const now = Date.now();
    const last = this.#renewals.get(path);
    const recent = last && now - last.at < RENEW_BACKOFF_MAX_MS ? last.count : 0;
    if (recent >= RENEW_ALARM)
      this.#log.error(
        { lease: path, renewals: recent },
        'a lease keeps getting epochs below those recorded in the log: was the ZooKeeper ensemble replaced or wiped? (docs/operations.md)',
      );
    const from = last ? last.at + Math.min(RENEW_BACKOFF_MAX_MS, RENEW_BACKOFF_MS * 2 ** recent) : now;
    this.#renew.set(path, from);
    const session = this.#session;
    if (!session) return;
    if (from <= now) this.#schedule(session);
    else if (!this.#renewTimer)
      this.#renewTimer = setTimeout(() => {
        this.#renewTimer = undefined;
        if (this.#session) this.#schedule(this.#session);
      }, from - now);
  }

  describe(): ClusterView {
    return {
      mode: 'zookeeper',
      nodeId: this.nodeId,
      connection: this.#connection,
      slotCount: this.#slotCount || null,
      members: [...this.members$.value],
      heldSlots: this.heldSlots().size,
      leader: this.leader$.value,
      unplaceable: [...this.#unplaceable],
      slotOwners: this.#session?.members ? this.#owners(this.#session, this.#session.members) : null,
    };
  }

  /** Resolves once the reconciliation in progress, if any, has finished. */
  async settled(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  /**
   * Deletes leases held by sessions of no live member. A lease is removed only when the previous scan
   * found it orphaned too, with the same session and epoch: a node that is stopping deletes its member
   * node just before its leases, and must not lose them to this scan.
   */
  async removeOrphanedLeases(): Promise<OrphanedLease[]> {
    const session = this.#session;
    if (!session || this.#connection !== 'connected' || this.leader$.value !== this.nodeId) return [];
    const { client } = session;
    const names = await client.getChildren(MEMBERS);
    const stats = await Promise.all(names.map((name) => client.exists(`${MEMBERS}/${name}`)));
    const sessions = new Set(stats.flatMap((stat) => (stat ? [stat.ephemeralOwner] : [])));
    const paths = [
      ...(await client.getChildren(SLOTS)).map((n) => `${SLOTS}/${n}`),
      ...(await client.getChildren(PINNED)).map((n) => `${PINNED}/${n}`),
    ];
    const leases = await Promise.all(paths.map(async (path) => ({ path, stat: await client.exists(path) })));
    const suspects = new Map<string, string>();
    const removed: OrphanedLease[] = [];
    for (const { path, stat } of leases) {
      if (!stat || sessions.has(stat.ephemeralOwner)) continue;
      const key = `${stat.ephemeralOwner}@${stat.czxid}`;
      if (this.#orphanSuspects.get(path) !== key) {
        suspects.set(path, key);
        continue;
      }
      await client.delete(path, stat.version).catch(ignoreMissing);
      removed.push({ lease: path, session: stat.ephemeralOwner });
    }
    this.#orphanSuspects = suspects;
    return removed;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#renewTimer);
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
        // Leadership first, so the next candidate takes over while this node still cleans up.
        await this.#deleteOwn(session.client, LEADER);
        if (session.candidate) await session.client.delete(`${ELECTION}/${session.candidate}`).catch(ignoreMissing);
        await session.client.delete(`${MEMBERS}/${this.nodeId}`).catch(ignoreMissing);
        await Promise.all(held.map((path) => this.#deleteOwn(session.client, path)));
      } catch {
        // Closing the session below removes every ephemeral node anyway.
      }
      await session.client.close();
    }
    this.events$.complete();
    this.members$.complete();
    this.leader$.complete();
  }

  #leasePathOf(taskId: string): string {
    return this.#pins.has(taskId) ? `${PINNED}/${taskId}` : `${SLOTS}/${slotOf(taskId, this.#slotCount)}`;
  }

  async #connect(): Promise<ZkClient> {
    const zk = this.#options.zk;
    return typeof zk === 'function' ? zk() : connectZk(zk);
  }

  /** Connects, checks the slot count, registers the member and starts watching; `rejoin` after a loss. */
  async #openSession(rejoin: boolean): Promise<SessionState | null> {
    const client = await this.#connect();
    try {
      for (const path of [MEMBERS, SLOTS, PINNED, ELECTION]) await client.mkdirp(path);
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
    const session: SessionState = {
      client,
      subscriptions: [],
      members: null,
      slots: null,
      pinned: null,
      candidate: null,
      assignment: null,
      ready,
      markReady,
    };
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
        session.slots = new Set(names.map((n) => `${SLOTS}/${n}`));
      }),
      this.#watch(session, PINNED, async (names) => {
        session.pinned = new Set(names.map((n) => `${PINNED}/${n}`));
      }),
    );
    this.#followData(session, ASSIGNMENT, (node) => {
      session.assignment = node ? parseAssignment(node.data, node.stat.version, this.#slotCount) : null;
      this.#schedule(session);
    });
    this.#followData(session, LEADER, (leader) => this.leader$.next(leader ? leader.data.toString() : null));
    this.#campaign(session);
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
   * Stands for leader: the candidate with the lowest sequence leads; any other watches only the candidate
   * just before its own and looks again when that one goes. Retried while the session is current. The
   * candidate's name carries the session id, so a create whose answer was lost is found, not repeated (a
   * second candidate of one session would wait for its own first forever).
   */
  #campaign(session: SessionState): void {
    const current = (): boolean => this.#session === session && !this.#stopped;
    const { client } = session;
    const tag = `n_${client.sessionId}_`;
    const step = async (): Promise<void> => {
      let candidates = (await client.getChildren(ELECTION)).sort(bySequence);
      session.candidate ??= candidates.find((name) => name.startsWith(tag)) ?? null;
      if (!session.candidate) {
        const created = await client.create(`${ELECTION}/${tag}`, this.nodeId, CreateMode.ephemeralSequential);
        session.candidate = created.slice(created.lastIndexOf('/') + 1);
        candidates = (await client.getChildren(ELECTION)).sort(bySequence);
      }
      const mine = candidates.indexOf(session.candidate);
      if (mine === -1) {
        session.candidate = null;
        throw new IllegalStateError("this node's election candidate vanished; standing again");
      }
      if (mine === 0) return this.#lead(session);
      this.#untilGone(session, `${ELECTION}/${candidates[mine - 1]}`, run, retry);
    };
    const retry = (): void => void setTimeout(() => current() && run(), 500);
    const run = (): void => void step().catch(() => current() && retry());
    run();
  }

  /** Publishes this node in `leader`; a previous leader's node still there is waited out. */
  async #lead(session: SessionState): Promise<void> {
    const { client } = session;
    try {
      await client.create(LEADER, this.nodeId, CreateMode.ephemeral);
      return;
    } catch (err) {
      if (!isZkError(err, 'NODEEXISTS')) throw err;
    }
    const stat = await client.exists(LEADER);
    if (stat?.ephemeralOwner === client.sessionId) return;
    const again = (): void => {
      if (this.#session === session && !this.#stopped)
        this.#lead(session).catch(() => this.#session === session && this.#campaign(session));
    };
    this.#untilGone(session, LEADER, again, () => setTimeout(again, 500));
  }

  /** Calls `gone` once `path` does not exist (at once if it does not now); `failed` if the watch fails. */
  #untilGone(session: SessionState, path: string, gone: () => void, failed: () => void): void {
    const current = (): boolean => this.#session === session && !this.#stopped;
    session.client.gone(path).then(
      () => current() && gone(),
      () => current() && failed(),
    );
  }

  /** Keeps a subscription with the session (ended with it) until it ends by itself. */
  #hold(session: SessionState, subscription: Subscription): void {
    if (subscription.closed) return;
    session.subscriptions.push(subscription);
    subscription.add(() => {
      const at = session.subscriptions.indexOf(subscription);
      if (at !== -1) session.subscriptions.splice(at, 1);
    });
  }

  /** Follows a znode's data while the session is current, watching again after a failed watch. */
  #followData(session: SessionState, path: string, next: (node: { data: Buffer; stat: ZkStat } | null) => void): void {
    const watch = session.client.data$(path).subscribe({
      next: (node) => this.#session === session && next(node),
      error: () => {
        setTimeout(() => this.#session === session && !this.#stopped && this.#followData(session, path, next), 500);
      },
    });
    this.#hold(session, watch);
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
      this.#renew.clear();
      this.#renewals.clear();
      this.#orphanSuspects.clear();
      this.leader$.next(null);
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
        } catch (err) {
          // Connection trouble: the next watch event or reconnection schedules another pass. Anything
          // else (an ACL refusing us, say) is retried too, but must be seen.
          if (
            !isZkError(err, 'CONNECTIONLOSS') &&
            !isZkError(err, 'OPERATIONTIMEOUT') &&
            !isZkError(err, 'SESSIONEXPIRED')
          )
            this.#log.warn({ err }, 'lease reconciliation failed; retrying');
          if (this.#session === session && session.client.state === 'connected') {
            setTimeout(() => this.#session === session && this.#schedule(session), 1_000);
          }
        }
      }
    })().finally(() => {
      this.#loop = null;
      if (this.#dirty && this.#session && !this.#stopped) this.#schedule(this.#session);
    });
  }

  /**
   * The owner of every slot: the published one while it is a live member, else the rendezvous winner among
   * the live members — so the slots of a member that died move at once, without waiting for the leader.
   */
  #owners(session: SessionState, members: readonly Member[]): string[] {
    const owners = assignSlots(this.#slotCount, members);
    const published = session.assignment?.published.owners;
    if (!published || owners.length === 0) return owners;
    const live = new Set(members.map((m) => m.id));
    for (let slot = 0; slot < owners.length; slot++) {
      const owner = published[slot];
      if (owner !== undefined && live.has(owner)) owners[slot] = owner;
    }
    return owners;
  }

  async publishAssignment(load: ArrayLike<number>): Promise<{ before: string[]; after: string[] } | null> {
    const session = this.#session;
    const members = session?.members;
    if (!session || !members || this.#connection !== 'connected' || this.leader$.value !== this.nodeId) return null;
    const current = session.assignment;
    // As published, departed members included: their slots count as moved when the record is written.
    const before = current ? [...current.published.owners] : [];
    const after = balanceSlots({
      slotCount: this.#slotCount,
      members,
      load,
      previous: current?.published ?? null,
    });
    const sameMembers = (a: readonly { id: string; weight: number }[]): boolean =>
      JSON.stringify(a.map((m) => [m.id, m.weight]).sort()) ===
      JSON.stringify(members.map((m) => [m.id, m.weight]).sort());
    if (
      current &&
      sameMembers(current.published.members) &&
      current.published.owners.every((o, slot) => o === after[slot])
    )
      return null;
    const published: PublishedAssignment = {
      members: members.map((m) => ({ id: m.id, weight: m.weight })),
      owners: after,
    };
    const data = encodeAssignment(published, this.#slotCount);
    let version: number;
    if (current) {
      // Versioned: a leader that lost its place meanwhile cannot overwrite its successor's assignment.
      version = (await session.client.set(ASSIGNMENT, data, current.version)).version;
    } else {
      try {
        await session.client.create(ASSIGNMENT, data);
        version = 0;
      } catch (err) {
        if (!isZkError(err, 'NODEEXISTS')) throw err;
        // Written before this session read it, or unreadable: overwrite only what no node can use.
        const stored = await session.client.get(ASSIGNMENT);
        if (stored && parseAssignment(stored.data, stored.stat.version, this.#slotCount)) return null;
        version = (await session.client.set(ASSIGNMENT, data, stored?.stat.version ?? -1)).version;
      }
    }
    session.assignment = { published, version };
    this.#schedule(session);
    return { before, after };
  }

  /** The lease paths this node should hold with these members, and the pinned tasks nobody may hold. */
  #assigned(members: readonly Member[]): { wanted: Set<string>; unplaceable: string[] } {
    const wanted = new Set<string>();
    const owners = this.#session ? this.#owners(this.#session, members) : assignSlots(this.#slotCount, members);
    owners.forEach((owner, slot) => owner === this.nodeId && wanted.add(`${SLOTS}/${slot}`));
    const unplaceable: string[] = [];
    for (const [taskId, runOn] of this.#pins) {
      const owner = ownerOf(taskId, runOn, this.#slotCount, members);
      if (owner === null) unplaceable.push(taskId);
      else if (owner === this.nodeId) wanted.add(`${PINNED}/${taskId}`);
    }
    return { wanted, unplaceable: unplaceable.sort() };
  }

  async #reconcile(session: SessionState): Promise<void> {
    const { members, slots, pinned, client } = session;
    if (!members || !slots || !pinned || client.state !== 'connected') return;
    const { wanted, unplaceable } = this.#assigned(members);
    if (unplaceable.join('\n') !== this.#unplaceable.join('\n')) {
      this.#unplaceable = unplaceable;
      this.events$.next({ type: 'unplaceable-changed' });
    }
    const present = (path: string): boolean => (path.startsWith(`${PINNED}/`) ? pinned : slots).has(path);
    let changed = false;
    for (const path of [...this.#held.keys()]) {
      if (wanted.has(path)) continue;
      this.#held.delete(path);
      this.#releasing.add(path);
      changed = true;
    }
    // A held lease missing from the watch may have been removed by the leader (it found it orphaned).
    for (const path of [...this.#held.keys()]) {
      if (present(path)) continue;
      const stat = await client.exists(path);
      if (stat?.ephemeralOwner === client.sessionId) continue;
      this.#held.delete(path);
      changed = true;
    }
    const renewing = new Set<string>();
    const now = Date.now();
    let later = Infinity;
    for (const [path, from] of this.#renew) {
      if (from > now) {
        later = Math.min(later, from);
        continue;
      }
      this.#renew.delete(path);
      if (!this.#held.has(path)) continue;
      // Out of `held` before the znode goes: no lease is handed out that no longer exists.
      this.#held.delete(path);
      renewing.add(path);
      const last = this.#renewals.get(path);
      const count = last && now - last.at < RENEW_BACKOFF_MAX_MS ? last.count + 1 : 1;
      this.#renewals.set(path, { count, at: now });
      changed = true;
    }
    for (const [path, { at }] of this.#renewals) if (now - at >= RENEW_BACKOFF_MAX_MS) this.#renewals.delete(path);
    if (later < Infinity && !this.#renewTimer)
      this.#renewTimer = setTimeout(() => {
        this.#renewTimer = undefined;
        if (this.#session === session) this.#schedule(session);
      }, later - now);
    if (changed) this.events$.next({ type: 'leases-changed' });
    await Promise.all([...renewing].map((path) => this.#deleteOwn(client, path)));
    await Promise.all(
      [...this.#releasing].map(async (path) => {
        await this.#deleteOwn(client, path);
        this.#releasing.delete(path);
      }),
    );
    const acquiring = [...wanted].filter(
      (path) => !this.#held.has(path) && (!present(path) || this.#uncertain.has(path) || renewing.has(path)),
    );
    const acquired = await Promise.all(acquiring.map((path) => this.#acquire(client, path)));
    if (this.#session !== session) return;
    // Members or pins may have changed while the creates were under way.
    const still = session.members ? this.#assigned(session.members).wanted : wanted;
    let gained = false;
    acquired.forEach((epoch, i) => {
      const path = acquiring[i]!;
      if (epoch === null) return;
      if (!still.has(path)) {
        this.#releasing.add(path);
        this.#dirty = true;
        return;
      }
      this.#held.set(path, { node: this.nodeId, epoch });
      gained = true;
    });
    if (gained) this.events$.next({ type: 'leases-changed' });
    session.markReady();
  }

  /** Creates the lease znode; its epoch, or null when another session holds it. */
  async #acquire(client: ZkClient, path: string): Promise<number | null> {
    try {
      await client.create(path, this.nodeId, CreateMode.ephemeral);
    } catch (err) {
      if (isZkError(err, 'NODEEXISTS')) {
        // Ours when an earlier create succeeded but its answer was lost with the connection.
      } else {
        this.#uncertain.add(path);
        throw err;
      }
    }
    const stat = await client.exists(path);
    this.#uncertain.delete(path);
    return stat && stat.ephemeralOwner === client.sessionId ? stat.czxid : null;
  }

  /** Deletes the ephemeral znode only if this session owns it (never another node's newer one). */
  async #deleteOwn(client: ZkClient, path: string): Promise<void> {
    const stat = await client.exists(path);
    if (!stat || stat.ephemeralOwner !== client.sessionId) return;
    await client.delete(path, stat.version).catch(ignoreMissing);
  }
}

/** `/assignment`: the members it was computed for and each slot's owner as an index into them. */
const AssignmentData = z.object({
  v: z.literal(1),
  slotCount: z.number().int().positive(),
  members: z.array(z.object({ id: z.string().min(1), weight: z.number().positive() })),
  owners: z.array(z.number().int().min(0)),
});

const encodeAssignment = (published: PublishedAssignment, slotCount: number): string => {
  const index = new Map(published.members.map((m, i) => [m.id, i]));
  return JSON.stringify({
    v: 1,
    slotCount,
    members: published.members,
    owners: published.owners.map((owner) => index.get(owner)!),
  });
};

/** Null for anything unreadable or made for another slot count: the nodes then fall back to rendezvous. */
const parseAssignment = (
  data: Buffer,
  version: number,
  slotCount: number,
): { published: PublishedAssignment; version: number } | null => {
  let raw: unknown;
  try {
    raw = JSON.parse(data.toString());
  } catch {
    return null;
  }
  const parsed = AssignmentData.safeParse(raw);
  if (!parsed.success || parsed.data.slotCount !== slotCount || parsed.data.owners.length !== slotCount) return null;
  const { members, owners } = parsed.data;
  if (owners.some((i) => i >= members.length)) return null;
  return { published: { members, owners: owners.map((i) => members[i]!.id) }, version };
};

/** Election candidates in the order they stood: by the sequence ZooKeeper appended (its last 10 digits). */
const bySequence = (a: string, b: string): number => Number(a.slice(-10)) - Number(b.slice(-10));

const slotOfPath = (path: string): number => Number(path.slice(SLOTS.length + 1));

const memberView = (m: Member): ClusterMember => ({
  id: m.id,
  ...(m.address ? { address: m.address } : {}),
  weight: m.weight,
  labels: m.labels,
  ...(m.version ? { version: m.version } : {}),
});

const ignoreMissing = (err: unknown): void => {
  if (!isZkError(err, 'NONODE')) throw err;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
