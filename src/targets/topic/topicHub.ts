import { randomUUID } from 'node:crypto';
import { IllegalStateError } from '../../../domain/errors/index.js';
import { systemClock, type Clock, type TimerHandle } from '../../clock/clock.js';
import {
  topicFireFieldsOf,
  type FireDelivery,
  type FireOutcome,
  type OutcomeDetail,
  type OutcomeListener,
  type Target,
} from '../dispatcher.js';
import { ConsumerGroups } from './consumerGroups.js';
import { PACKED_FRAMES } from './frames.js';
import {
  CloseCode,
  PROTOCOL_VERSION,
  parseClientMessage,
  type ClientMessage,
  type FireMessage,
  type ServerMessage,
} from './protocol.js';

export type TopicHubOptions = {
  /** Node id announced to subscribers in `welcome`. */
  node: string;
  /** A consumer that has not acked a fire this long after it was sent loses it to another. @default 5000 */
  ackTimeout?: number;
  /** A group whose last consumer of a topic left this recently still expects that topic's fires. @default 60000 */
  groupGrace?: number;
  /** How often the transport pings each consumer to find dead links. @default 15000 */
  heartbeatInterval?: number;
  /** @default systemClock */
  clock?: Clock;
  /** Where failures that must not escape go (a throwing outcome listener). @default console */
  logger?: { warn(details: object, message: string): void };
};
type CompiledOptions = Required<TopicHubOptions>;

/** The hub's handle on one consumer connection; the transport (`topicRoutes`) implements it. */
export type ConsumerLink = { send(message: ServerMessage): void; close(code: number, reason: string): void };
export type ConsumerIdentity = {
  group: string;
  topics: readonly string[];
  consumerId: string;
  /** The node that connected on behalf of its own consumer (`consumerRelay.ts`); absent for a direct consumer. */
  relayedBy?: string;
};
/** What the transport feeds back: the connection's text frames, and its end. */
export type ConsumerSession = { receive(raw: string): void; closed(): void };

/** Serves a direct consumer beyond this hub: the cluster relay brings it other nodes' fires over its link. */
export type ConsumerRelayPort = { open(identity: ConsumerIdentity, link: ConsumerLink): RelaySession };
export type RelaySession = {
  /** An ack or outcome from the consumer; true when it answered a relayed fire, which the hub then ignores. */
  receive(message: ClientMessage): boolean;
  close(): void;
};

/**
 * Serves direct groups (`directDelivery.ts`): groups declared in the log, whose consumers read fires from
 * the event store and write outcomes back to it; those reach the hub through `settleDirect`.
 */
export type DirectDeliveryPort = {
  groupsOf(topic: string): readonly string[];
  /** Hands an attempt to direct groups of its topic. */
  publish(fire: FireDelivery, topic: string, groups: readonly string[]): void;
  /** An outcome read from the log before the hub knew the attempt (it was fired before a takeover). */
  knownOutcome(fireId: string, attempt: number, group: string): OutcomeDetail | undefined;
};
export type DirectOutcome = OutcomeDetail & { group: string; fireId: string; attempt: number };

export type TopicHubStats = {
  consumersByGroup: Record<string, number>;
  /** Group deliveries waiting for a consumer, plus fires waiting for any group of their topic. */
  pending: number;
  /** Group deliveries sent to a consumer and awaiting its outcome. */
  inFlight: number;
  /** Fire messages sent again for a group delivery (ack timeout, consumer lost). */
  redeliveries: number;
};
export type ConsumerInfo = ConsumerIdentity & { connectedAt: string; inFlight: number };

type Consumer = ConsumerIdentity & {
  topicSet: ReadonlySet<string>;
  link: ConsumerLink;
  connectedAt: number;
  deliveries: Set<GroupDelivery>;
  open: boolean;
  relay: RelaySession | undefined;
};
type Holder = { acked: boolean; ackTimer: TimerHandle | undefined };
/**
 * One attempt handed to one group: settled by the first outcome from any consumer of the group. A direct
 * group's delivery has no holders: it went to the log, and its outcome comes from there.
 */
type GroupDelivery = {
  id: string;
  group: string;
  direct: boolean;
  attempt: Attempt;
  holders: Map<Consumer, Holder>;
  sends: number;
  detail?: OutcomeDetail;
};
type Attempt = {
  key: string;
  fire: FireDelivery;
  topic: string;
  groups: Map<string, GroupDelivery>;
  deadlineTimer: TimerHandle;
};

const attemptKey = (fireId: string, attempt: number): string => `${fireId}#${attempt}`;
/** An ack timer this late means the event loop was busy (see `#send`). */
const LATE_TIMER_MS = 20;

/**
 * Delivers topic fires to subscribed consumer groups: every group subscribed to the topic gets the fire,
 * one live consumer per group handles it (least busy, round-robin among equals), at least once, with
 * `fireId` as the idempotency key. The attempt's outcome is reported once every expected group answered.
 */
export class TopicHub implements Target {
  readonly options: CompiledOptions;
  readonly #listener: OutcomeListener;
  readonly #clock: Clock;
  readonly #attempts = new Map<string, Attempt>();
  /** Unsettled group deliveries by id, the index for consumer acks and outcomes. */
  readonly #deliveries = new Map<string, GroupDelivery>();
  readonly #pending = new Set<GroupDelivery>();
  /** Attempts whose topic had no known group at delivery time. */
  readonly #held = new Set<Attempt>();
  readonly #groups: ConsumerGroups<Consumer>;
  #redeliveries = 0;
  /**
   * Delivery ids: this hub's own prefix and a count. Unique across nodes and restarts as a UUID per
   * delivery was, for a fraction of its cost (one per group per fire).
   */
  readonly #deliveryIdPrefix = `${randomUUID()}-`;
  #deliveriesMade = 0;
  #relay: ConsumerRelayPort | null = null;
  #direct: DirectDeliveryPort | null = null;
  #closed = false;

  constructor(listener: OutcomeListener, options: TopicHubOptions) {
    this.options = {
      node: options.node,
      ackTimeout: options.ackTimeout ?? 5_000,
      groupGrace: options.groupGrace ?? 60_000,
      heartbeatInterval: options.heartbeatInterval ?? 15_000,
      clock: options.clock ?? systemClock,
      logger: options.logger ?? console,
    };
    this.#listener = listener;
    this.#clock = this.options.clock;
    this.#groups = new ConsumerGroups(this.options.groupGrace);
  }

  deliver(fire: FireDelivery): void {
    if (!('topic' in fire.target)) throw new IllegalStateError(`fire ${fire.fireId} is not a topic fire`);
    const key = attemptKey(fire.fireId, fire.attempt);
    const remaining = fire.deadline - this.#clock.now();
    // A second deliver of the same attempt is the runtime retrying a hand-off: the first one is still on.
    if (this.#closed || this.#attempts.has(key) || remaining <= 0) return;
    const attempt: Attempt = {
      key,
      fire,
      topic: fire.target.topic,
      groups: new Map(),
      deadlineTimer: this.#clock.setTimer(() => this.#drop(attempt), remaining),
    };
    this.#attempts.set(key, attempt);
    this.#route(attempt);
  }

  cancel(fireId: string, attempt: number): void {
    const found = this.#attempts.get(attemptKey(fireId, attempt));
    if (found) this.#drop(found);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const attempt of [...this.#attempts.values()]) this.#drop(attempt);
    this.setRelay(null);
    this.#direct = null;
    for (const consumer of this.#groups.all()) {
      consumer.open = false;
      consumer.link.close(CloseCode.shuttingDown, 'node shutting down');
    }
    this.#groups.clear();
  }

  /**
   * Lets `relay` serve every direct consumer, those connected now and those to come; relayed consumers
   * are never relayed onward. `null` closes the relay sessions.
   */
  setRelay(relay: ConsumerRelayPort | null): void {
    for (const consumer of this.#groups.all()) {
      consumer.relay?.close();
      consumer.relay = undefined;
    }
    this.#relay = this.#closed ? null : relay;
    for (const consumer of this.#groups.all()) this.#openRelay(consumer);
  }

  /** Lets `direct` serve the direct groups, from the next attempt routed on; `null` stops it. */
  setDirect(direct: DirectDeliveryPort | null): void {
    this.#direct = this.#closed ? null : direct;
  }

  /** A direct group's outcome, read from the log: settles its delivery if the attempt is still open here. */
  settleDirect(outcome: DirectOutcome): void {
    const attempt = this.#attempts.get(attemptKey(outcome.fireId, outcome.attempt));
    const delivery = attempt?.groups.get(outcome.group);
    if (!attempt || !delivery?.direct || delivery.detail) return;
    const { fireId: _fireId, attempt: _attempt, ...detail } = outcome;
    delivery.detail = detail;
    this.#deliveries.delete(delivery.id);
    this.#completeIfAnswered(attempt);
  }

  /**
   * The direct groups of `topic` changed: attempts held for want of a group go out to a new one, and
   * attempts stop waiting for a retired one.
   */
  directGroupsChanged(topic: string): void {
    const groups = new Set(this.#direct?.groupsOf(topic) ?? []);
    for (const attempt of [...this.#attempts.values()]) {
      if (attempt.topic !== topic) continue;
      if (this.#held.has(attempt)) {
        if (groups.size > 0) this.#route(attempt);
        continue;
      }
      for (const [group, delivery] of attempt.groups) {
        if (!delivery.direct || delivery.detail || groups.has(group)) continue;
        attempt.groups.delete(group);
        this.#deliveries.delete(delivery.id);
      }
      if (attempt.groups.size === 0) this.#held.add(attempt);
      else this.#completeIfAnswered(attempt);
    }
  }

  /** Registers a connected consumer; a newer connection with the same group and consumerId replaces the older. */
  attach(identity: ConsumerIdentity, link: ConsumerLink): ConsumerSession {
    if (this.#closed) {
      link.close(CloseCode.shuttingDown, 'node shutting down');
      return { receive: () => {}, closed: () => {} };
    }
    const consumer: Consumer = {
      ...identity,
      topicSet: new Set(identity.topics),
      link,
      connectedAt: this.#clock.now(),
      deliveries: new Set(),
      open: true,
      relay: undefined,
    };
    const previous = this.#groups.find(identity.group, identity.consumerId);
    this.#groups.add(consumer);
    link.send({
      v: PROTOCOL_VERSION,
      type: 'welcome',
      node: this.options.node,
      group: identity.group,
      consumerId: identity.consumerId,
      topics: [...identity.topics],
      heartbeatInterval: this.options.heartbeatInterval,
      ackTimeout: this.options.ackTimeout,
      frames: PACKED_FRAMES,
    });
    if (previous) {
      // The same consumer reconnected before its old link was found dead: move its work over now.
      this.#detach(previous);
      previous.link.close(CloseCode.replaced, 'replaced by a newer connection of the same consumer');
    }
    this.#resume(consumer);
    this.#openRelay(consumer);
    return { receive: (raw) => this.#receive(consumer, raw), closed: () => this.#detach(consumer) };
  }

  stats(): TopicHubStats {
    return {
      consumersByGroup: this.#groups.countByGroup(),
      pending: this.#pending.size + this.#held.size,
      inFlight: this.#deliveries.size - this.#pending.size,
      redeliveries: this.#redeliveries,
    };
  }

  consumers(): ConsumerInfo[] {
    return this.#groups.all().map((c) => ({
      group: c.group,
      topics: c.topics,
      consumerId: c.consumerId,
      ...(c.relayedBy === undefined ? {} : { relayedBy: c.relayedBy }),
      connectedAt: new Date(c.connectedAt).toISOString(),
      inFlight: c.deliveries.size,
    }));
  }

  #route(attempt: Attempt): void {
    const direct = this.#direct;
    const directGroups = direct?.groupsOf(attempt.topic) ?? [];
    // A group declared direct reads its fires from the log, even if a consumer of it is connected here.
    const connected = this.#groups
      .expectedGroups(attempt.topic, this.#clock.now())
      .filter((group) => !directGroups.includes(group));
    if (connected.length + directGroups.length === 0) {
      this.#held.add(attempt);
      return;
    }
    this.#held.delete(attempt);
    const deliveryTo = (group: string, isDirect: boolean): GroupDelivery => {
      const delivery: GroupDelivery = {
        id: `${this.#deliveryIdPrefix}${(++this.#deliveriesMade).toString(36)}`,
        group,
        direct: isDirect,
        attempt,
        holders: new Map(),
        sends: 0,
      };
      attempt.groups.set(group, delivery);
      this.#deliveries.set(delivery.id, delivery);
      return delivery;
    };
    for (const group of connected) this.#dispatch(deliveryTo(group, false));
    if (!direct || directGroups.length === 0) return;
    const { fireId, attempt: number } = attempt.fire;
    const waiting: string[] = [];
    for (const group of directGroups) {
      const delivery = deliveryTo(group, true);
      const known = direct.knownOutcome(fireId, number, group);
      if (known) {
        delivery.detail = known;
        this.#deliveries.delete(delivery.id);
      } else waiting.push(group);
    }
    if (waiting.length > 0) direct.publish(attempt.fire, attempt.topic, waiting);
    this.#completeIfAnswered(attempt);
  }

  /** Sends the delivery to a consumer that does not hold it yet; false when there is none. */
  #dispatch(delivery: GroupDelivery): boolean {
    const consumer = this.#groups.pick(delivery.group, delivery.attempt.topic, (c) => delivery.holders.has(c));
    if (!consumer) {
      if (delivery.holders.size === 0) this.#pending.add(delivery);
      return false;
    }
    this.#pending.delete(delivery);
    this.#send(delivery, consumer);
    return true;
  }

  #send(delivery: GroupDelivery, consumer: Consumer): void {
    const { fire, topic } = delivery.attempt;
    if (delivery.sends++ > 0) this.#redeliveries++;
    delivery.holders.get(consumer)?.ackTimer?.cancel();
    const holder: Holder = { acked: false, ackTimer: undefined };
    delivery.holders.set(consumer, holder);
    consumer.deliveries.add(delivery);
    const due = this.#clock.now() + this.options.ackTimeout;
    holder.ackTimer = this.#clock.setTimer(() => {
      // Fired late, the event loop was busy: acks that arrived meanwhile are still unread on the sockets,
      // and timers run before I/O is read. Read it first, or a busy node would redeliver what was acked.
      if (this.#clock.now() - due > LATE_TIMER_MS)
        setImmediate(() => delivery.holders.get(consumer) === holder && this.#ackTimedOut(delivery, consumer));
      else this.#ackTimedOut(delivery, consumer);
    }, this.options.ackTimeout);
    const message: FireMessage = {
      v: PROTOCOL_VERSION,
      type: 'fire',
      deliveryId: delivery.id,
      ...topicFireFieldsOf(fire, topic),
    };
    consumer.link.send(message);
  }

  #ackTimedOut(delivery: GroupDelivery, consumer: Consumer): void {
    const holder = delivery.holders.get(consumer);
    if (!holder || holder.acked || !this.#deliveries.has(delivery.id)) return;
    holder.ackTimer = undefined;
    // The silent consumer keeps its copy (its outcome still counts); the fire also goes to another one,
    // or again to the same one when it is the group's only consumer.
    if (!this.#dispatch(delivery) && consumer.open) this.#send(delivery, consumer);
  }

  #receive(consumer: Consumer, raw: string): void {
    if (!consumer.open) return;
    const parsed = parseClientMessage(raw);
    if (!parsed.ok) {
      consumer.link.send(parsed.error);
      return;
    }
    const message = parsed.message;
    if (consumer.relay?.receive(message)) return;
    const delivery = this.#deliveries.get(message.deliveryId);
    // Acks and outcomes for settled, cancelled or expired deliveries are normal late traffic.
    if (!delivery || delivery.group !== consumer.group) return;
    if (message.type === 'ack') {
      const holder = delivery.holders.get(consumer);
      if (!holder) return;
      holder.acked = true;
      holder.ackTimer?.cancel();
      holder.ackTimer = undefined;
      return;
    }
    // Any consumer of the group may settle it: a replaced or timed-out holder did the same work.
    delivery.detail = {
      group: delivery.group,
      consumer: consumer.consumerId,
      status: message.status,
      ...(message.message === undefined ? {} : { message: message.message }),
    };
    this.#release(delivery, consumer);
    this.#completeIfAnswered(delivery.attempt);
  }

  #completeIfAnswered(attempt: Attempt): void {
    const groups = [...attempt.groups.values()];
    if (this.#attempts.has(attempt.key) && groups.length > 0 && groups.every((d) => d.detail)) this.#complete(attempt);
  }

  /** Takes a delivery back from every holder; those other than `keep` are told to stop. */
  #release(delivery: GroupDelivery, keep?: Consumer): void {
    this.#deliveries.delete(delivery.id);
    this.#pending.delete(delivery);
    for (const [consumer, holder] of delivery.holders) {
      holder.ackTimer?.cancel();
      consumer.deliveries.delete(delivery);
      if (consumer !== keep) consumer.link.send({ v: PROTOCOL_VERSION, type: 'cancel', deliveryId: delivery.id });
    }
    delivery.holders.clear();
  }

  #complete(attempt: Attempt): void {
    this.#forget(attempt);
    const details = [...attempt.groups.values()].map((d) => d.detail!);
    const failed = details.filter((d) => d.status === 'failed');
    const outcome: FireOutcome = {
      taskId: attempt.fire.taskId,
      fireId: attempt.fire.fireId,
      attempt: attempt.fire.attempt,
      status: failed.length === 0 ? 'succeeded' : 'failed',
      at: this.#clock.now(),
      details,
    };
    if (failed.length > 0) {
      outcome.message = failed.map((d) => `group ${d.group} failed: ${d.message ?? 'no message'}`).join('; ');
    }
    try {
      this.#listener(outcome);
    } catch (error) {
      this.options.logger.warn({ err: error, fireId: outcome.fireId }, 'topic hub: outcome listener threw');
    }
  }

  /** Cancel or deadline: consumers holding the attempt are told to stop, and no outcome follows. */
  #drop(attempt: Attempt): void {
    for (const delivery of attempt.groups.values()) this.#release(delivery);
    this.#forget(attempt);
  }

  /** Every group delivery of the attempt is already released. */
  #forget(attempt: Attempt): void {
    attempt.deadlineTimer.cancel();
    this.#attempts.delete(attempt.key);
    this.#held.delete(attempt);
  }

  #detach(consumer: Consumer): void {
    if (!consumer.open) return;
    consumer.open = false;
    consumer.relay?.close();
    consumer.relay = undefined;
    this.#groups.remove(consumer, this.#clock.now());
    for (const delivery of consumer.deliveries) {
      delivery.holders.get(consumer)?.ackTimer?.cancel();
      delivery.holders.delete(consumer);
      if (delivery.holders.size === 0) this.#dispatch(delivery);
    }
    consumer.deliveries.clear();
  }

  #openRelay(consumer: Consumer): void {
    if (!this.#relay || consumer.relayedBy !== undefined) return;
    const { group, topics, consumerId } = consumer;
    consumer.relay = this.#relay.open({ group, topics, consumerId }, consumer.link);
  }

  /** A consumer arrived: fires waiting for its topics or its group go out now. */
  #resume(consumer: Consumer): void {
    for (const attempt of [...this.#held]) if (consumer.topicSet.has(attempt.topic)) this.#route(attempt);
    for (const delivery of [...this.#pending]) {
      if (delivery.group === consumer.group && consumer.topicSet.has(delivery.attempt.topic)) this.#dispatch(delivery);
    }
  }
}
