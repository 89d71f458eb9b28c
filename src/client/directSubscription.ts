import { randomUUID } from 'node:crypto';
import type { Subscription as RxSubscription } from 'rxjs';
import {
  DIRECT_GROUPS_STREAM,
  FirePublished,
  GroupName,
  directGroupsOf,
  firesStreamPattern,
  outcomesStreamOf,
  persistentGroupNameOf,
  type FireHandled,
} from '../../domain/directDelivery/index.js';
import { ValidationError, fieldIssuesOf } from '../../domain/errors/index.js';
import type { Clock, TimerHandle } from '../clock/clock.js';
import type { EsdbEventStore, GroupMessage } from '../store/esdb/esdbEventStore.js';
import { isWrongExpectedVersionError } from '../store/eventStore.js';
import { isEsdbUrl, openEsdbStore } from '../store/openEventStore.js';
import { PROTOCOL_VERSION } from '../targets/topic/protocol.js';
import { FireRunner, type FireHandler, type Outcome } from './fireRunner.js';
import type { ConnectionState, StateChange } from './hubConnection.js';

/** How the persistent subscription groups of direct mode behave (EventStoreDB's settings). */
export type DirectModeOptions = {
  /**
   * A fire not acked this long after it went to a consumer is retried to another (the first keeps
   * running). Acks follow the handler, so set it above your longest handler. @default 30000
   */
  messageTimeoutMs?: number;
  /** Redeliveries (nacks, timeouts, lost consumers) before a fire is parked. @default 10 */
  maxRetryCount?: number;
  /** Fires this consumer holds at once, per topic. @default 10 */
  bufferSize?: number;
};

export type DirectSubscriptionOptions = {
  store: string;
  group: string;
  topics: readonly string[];
  consumerId: string;
  direct: Required<DirectModeOptions>;
  backoff: { initialDelay: number; maxDelay: number };
  dedupeSize: number;
  clock: Clock;
  onStateChange: (change: StateChange) => void;
  onError: (error: Error) => void;
};

/**
 * Direct mode of the SDK (docs/subscribers.md): fires come straight from EventStoreDB through one
 * persistent subscription per group and topic, so the consumers of a group compete for them; outcomes
 * go back to the log, where the node that fired the task records them in the task stream. A fire is
 * acked only once its outcome is recorded: a consumer that dies mid-handling leaves it to the others.
 */
export class DirectSubscription {
  readonly consumerId: string;
  readonly ready: Promise<void>;
  readonly #options: DirectSubscriptionOptions;
  readonly #store: EsdbEventStore;
  readonly #runner: FireRunner;
  readonly #links: TopicLink[];
  readonly #timers = new Set<TimerHandle>();
  #resolveReady!: () => void;
  #rejectReady!: (error: Error) => void;
  #closed = false;

  constructor(options: DirectSubscriptionOptions, handler: FireHandler) {
    if (!isEsdbUrl(options.store)) {
      throw new ValidationError([
        { path: 'store', message: 'must be an EventStoreDB connection string (esdb://host:2113?tls=false)' },
      ]);
    }
    this.#options = options;
    this.consumerId = options.consumerId;
    this.#store = openEsdbStore(options.store);
    this.#runner = new FireRunner(handler, options.dedupeSize);
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => {});
    this.#links = options.topics.map((topic) => ({ topic, state: 'connecting', confirmed: false, joined: undefined }));
    for (const link of this.#links) void this.#keepJoined(link);
  }

  get state(): ConnectionState {
    const states = this.#links.map((l) => l.state);
    return (['open', 'reconnecting', 'connecting', 'closed'] as const).find((s) => states.includes(s)) ?? 'closed';
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#rejectReady(new Error('subscription closed before it connected'));
    this.#runner.abortAll(new Error('subscription closed'));
    for (const timer of this.#timers) timer.cancel();
    for (const link of this.#links) {
      link.joined?.leave();
      this.#setState(link, 'closed');
    }
    await this.#store.close();
  }

  /** Creates the group's subscription and declares the group (both idempotent), then consumes until closed. */
  async #keepJoined(link: TopicLink): Promise<void> {
    const { group, consumerId, direct, backoff } = this.#options;
    const name = persistentGroupNameOf(group, link.topic);
    let failures = 0;
    while (!this.#closed) {
      try {
        // The subscription starts at the end of the log, and fires are published for the group only once
        // its declaration is read: so creating it first loses nothing published for the group.
        await this.#store.ensurePersistentGroup(name, {
          streamPattern: firesStreamPattern(link.topic),
          messageTimeoutMs: direct.messageTimeoutMs,
          maxRetryCount: direct.maxRetryCount,
        });
        await declareGroup(this.#store, group, link.topic, consumerId, this.#options.clock.now());
        if (this.#closed) return;
        await new Promise<void>((resolve, reject) => {
          const subscription: RxSubscription = this.#store
            .joinPersistentGroup(name, {
              bufferSize: direct.bufferSize,
              confirmed: () => {
                failures = 0;
                this.#setState(link, 'open');
                link.confirmed = true;
                if (this.#links.every((l) => l.confirmed)) this.#resolveReady();
              },
            })
            .subscribe({ next: (message) => this.#receive(link.topic, message), error: reject, complete: resolve });
          link.joined = {
            leave: () => {
              subscription.unsubscribe();
              resolve();
            },
          };
        });
      } catch (err) {
        if (this.#closed) return;
        const error = err instanceof Error ? err : new Error(String(err));
        this.#setState(link, 'reconnecting', error);
        const ceiling = Math.min(backoff.maxDelay, backoff.initialDelay * 2 ** failures++);
        await this.#sleep(ceiling / 2 + Math.random() * (ceiling / 2));
      }
    }
  }

  #receive(topic: string, message: GroupMessage): void {
    const { clock, onError } = this.#options;
    const parsed = FirePublished.safeParse({ type: message.event.type, data: message.event.data });
    if (!parsed.success) {
      const reason = `not a fire: ${fieldIssuesOf(parsed.error)
        .map((i) => `${i.path}: ${i.message}`)
        .join('; ')}`;
      onError(new Error(`${message.event.stream}@${message.event.revision} parked, ${reason}`));
      void message.nack('park', reason).catch(() => {});
      return;
    }
    const fire = parsed.data.data;
    const remaining = fire.deadline - clock.now();
    // The node has recorded a timeout (or is about to); its retry policy sends a new attempt if any.
    if (remaining <= 0) return void message.ack().catch(() => {});
    const deadline = clock.setTimer(() => {
      this.#timers.delete(deadline);
      this.#runner.abort(fire.fireId, fire.attempt, new Error('the fire passed its deadline'));
    }, remaining);
    this.#timers.add(deadline);
    const { v: _v, node: _node, groups: _groups, ...fields } = fire;
    this.#runner.receive(
      { v: PROTOCOL_VERSION, type: 'fire', deliveryId: message.event.id, ...fields, topic },
      (_deliveryId, outcome) => {
        deadline.cancel();
        this.#timers.delete(deadline);
        void this.#report(fire, outcome, message);
      },
    );
  }

  /** Records the outcome, then acks; a fire whose outcome could not be recorded comes back (and is answered from memory). */
  async #report(fire: FirePublished['data'], outcome: Outcome, message: GroupMessage): Promise<void> {
    const { group, consumerId, clock, onError } = this.#options;
    const data: FireHandled['data'] = {
      v: 1,
      fireId: fire.fireId,
      attempt: fire.attempt,
      taskId: fire.taskId,
      group,
      consumer: consumerId,
      status: outcome.status,
      ...(outcome.message === undefined ? {} : { message: outcome.message.slice(0, 1000) }),
      at: new Date(clock.now()).toISOString(),
    };
    try {
      await this.#store.appendToStream(outcomesStreamOf(fire.topic), [
        { id: randomUUID(), type: 'FireHandled', data, metadata: { actor: `consumer:${consumerId}` } },
      ]);
    } catch (err) {
      if (this.#closed) return;
      onError(new Error(`outcome of fire ${fire.fireId} not recorded, it will come back: ${String(err)}`));
      await message.nack('retry', 'outcome not recorded').catch(() => {});
      return;
    }
    await message.ack().catch(() => {});
  }

  #setState(link: TopicLink, state: ConnectionState, error?: Error): void {
    link.state = state;
    this.#options.onStateChange({
      url: `${redacted(this.#options.store)}#${link.topic}`,
      state,
      ...(error ? { error } : {}),
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#options.clock.setTimer(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }
}

type TopicLink = {
  topic: string;
  state: ConnectionState;
  confirmed: boolean;
  joined: { leave(): void } | undefined;
};

/** Declares `group` for `topic` unless it is: nodes publish the topic's fires for it from then on. */
const declareGroup = async (
  store: EsdbEventStore,
  group: string,
  topic: string,
  consumer: string,
  now: number,
): Promise<void> => {
  for (let tries = 1; ; tries++) {
    const events = await store.readStream(DIRECT_GROUPS_STREAM);
    if (directGroupsOf(events).get(topic)?.has(group)) return;
    try {
      await store.appendToStream(
        DIRECT_GROUPS_STREAM,
        [
          {
            id: randomUUID(),
            type: 'DirectGroupDeclared',
            data: { v: 1, group, topic, consumer, at: new Date(now).toISOString() },
            metadata: { actor: `consumer:${consumer}` },
          },
        ],
        { expectedRevision: events.at(-1)?.revision ?? 'no_stream' },
      );
      return;
    } catch (err) {
      // Another consumer declared something meanwhile: read again, perhaps it was this very group.
      if (!isWrongExpectedVersionError(err) || tries >= 10) throw err;
    }
  }
};

/**
 * Retires a direct group for `topics` (default: every topic it is declared for): nodes stop waiting
 * for its outcomes, and its persistent subscriptions (with their parked fires) are deleted. Returns the
 * topics it was declared for. A consumer of the group still running declares it again.
 */
export const retireDirectGroup = async (options: {
  store: string;
  group: string;
  topics?: readonly string[];
  actor?: string;
}): Promise<string[]> => {
  if (!isEsdbUrl(options.store)) {
    throw new ValidationError([
      { path: 'store', message: 'must be an EventStoreDB connection string (esdb://host:2113?tls=false)' },
    ]);
  }
  const group = GroupName.safeParse(options.group);
  if (!group.success) throw new ValidationError(fieldIssuesOf(group.error, options.group, 'group'));
  const store = openEsdbStore(options.store);
  try {
    const retired: string[] = [];
    for (let tries = 1; ; tries++) {
      const events = await store.readStream(DIRECT_GROUPS_STREAM);
      const declared = directGroupsOf(events);
      const topics = (options.topics ?? [...declared.keys()]).filter((t) => declared.get(t)?.has(options.group));
      if (topics.length === 0) break;
      const at = new Date().toISOString();
      try {
        await store.appendToStream(
          DIRECT_GROUPS_STREAM,
          topics.map((topic) => ({
            id: randomUUID(),
            type: 'DirectGroupRetired',
            data: { v: 1, group: options.group, topic, at },
            metadata: { actor: options.actor ?? 'sdk' },
          })),
          { expectedRevision: events.at(-1)?.revision ?? 'no_stream' },
        );
        retired.push(...topics);
        break;
      } catch (err) {
        if (!isWrongExpectedVersionError(err) || tries >= 10) throw err;
      }
    }
    for (const topic of options.topics ?? retired)
      await store.deletePersistentGroup(persistentGroupNameOf(options.group, topic));
    return retired;
  } finally {
    await store.close();
  }
};

/** A connection string with its password hidden, for state changes and logs. */
const redacted = (url: string): string => url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
