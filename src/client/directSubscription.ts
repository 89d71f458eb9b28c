import { randomUUID } from 'node:crypto';
import type { Subscription as RxSubscription } from 'rxjs';
import {
  DIRECT_GROUPS_STREAM,
  type DirectGroupEvent,
  FirePublished,
  GroupName,
  TopicName,
  directGroupEventsOf,
  directGroupsOf,
  firesStreamPattern,
  outcomesStreamOf,
  persistentGroupNameOf,
  type DirectGroups,
  type FireHandled,
} from '../../domain/directDelivery/index.js';
import { ValidationError, fieldIssuesOf } from '../../domain/errors/index.js';
import type { TimerHandle } from '../clock/clock.js';
import type { EsdbEventStore, GroupMessage } from '../store/esdb/esdbEventStore.js';
import { newEventId } from '../store/eventId.js';
import { isWrongExpectedVersionError, type EventData, type RecordedEvent } from '../store/eventStore.js';
import { isEsdbUrl, openEsdbStore } from '../store/openEventStore.js';
import { PROTOCOL_VERSION } from '../targets/topic/protocol.js';
import { backoffDelay, type CompiledOptions } from './compiledOptions.js';
import { FireRunner, type FireHandler, type Outcome } from './fireRunner.js';
import type { ConnectionState } from './hubConnection.js';
import { RecentMemory } from './recentMemory.js';

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
  /**
   * How long `close()` lets running handlers finish (their outcomes recorded and acked) before it aborts
   * them and hands their fires back to the group. @default 5000
   */
  closeTimeoutMs?: number;
};

/** Errors no retry cures: the consumer's credentials or the server itself (older than 21.10) refuse it. */
const PERMANENT_ERRORS = new Set(['access-denied', 'unsupported', 'invalid-argument']);

/**
 * Direct mode of the SDK (docs/subscribers.md): fires come straight from EventStoreDB through one
 * persistent subscription per group and topic, so the consumers of a group compete for them; outcomes
 * go back to the log, where the node that fired the task records them in the task stream. A fire is
 * acked only once its outcome is recorded: a consumer that dies mid-handling leaves it to the others.
 */
export class DirectSubscription {
  readonly consumerId: string;
  readonly ready: Promise<void>;
  readonly #options: CompiledOptions;
  readonly #store: EsdbEventStore;
  readonly #storeUrl: string;
  readonly #direct: Required<DirectModeOptions>;
  readonly #runner: FireRunner;
  readonly #links: TopicLink[];
  readonly #timers = new Set<TimerHandle>();
  /** Outcomes being recorded, by attempt: a redelivery while one is on waits for it instead of writing again. */
  readonly #recording = new Map<string, Promise<Recorded>>();
  /**
   * Ids of events whose outcome this consumer recorded: a redelivery of one (a lost ack) is only acked. A
   * fire published again (a takeover) is a new event, and its outcome is recorded again for the new owner.
   */
  readonly #recordedEvents: RecentMemory<true>;
  /** One entry per received fire until it is acked or nacked: what `close()` waits for. */
  readonly #work = new Set<Promise<void>>();
  #resolveReady!: () => void;
  #rejectReady!: (error: Error) => void;
  #closing = false;
  /** Set when close() gave up waiting: outcomes of the handlers it aborted are not recorded. */
  #abandoning = false;
  #closed: Promise<void> | undefined;

  constructor(options: CompiledOptions, store: string, direct: Required<DirectModeOptions>, handler: FireHandler) {
    mustBeEsdbUrl(store);
    this.#options = options;
    this.#storeUrl = store;
    this.#direct = direct;
    this.consumerId = options.consumerId;
    this.#store = openEsdbStore(store);
    this.#runner = new FireRunner(handler, options.dedupeSize);
    this.#recordedEvents = new RecentMemory(options.dedupeSize);
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
    return (
      (['open', 'reconnecting', 'connecting', 'failed', 'closed'] as const).find((s) => states.includes(s)) ?? 'closed'
    );
  }

  /**
   * Lets running handlers finish for up to `closeTimeoutMs` (their outcomes are recorded and acked, so a
   * fire handled here is not handed to another consumer), nacking fires that arrive meanwhile; then aborts
   * the rest, whose fires go back to the group unrecorded: an aborted handler's result proves nothing.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.#rejectReady(new Error('subscription closed before it connected'));
      await Promise.race([Promise.allSettled([...this.#work]), this.#sleep(this.#direct.closeTimeoutMs)]);
      this.#abandoning = true;
      this.#runner.abortAll(new Error('subscription closed'));
      for (const timer of this.#timers) timer.cancel();
      for (const link of this.#links) {
        link.joined?.leave();
        this.#setState(link, 'closed');
      }
      await this.#store.close();
    })();
    return this.#closed;
  }

  /** Creates the group's subscription and declares the group (both idempotent), then consumes until closed. */
  async #keepJoined(link: TopicLink): Promise<void> {
    const { group, consumerId, backoff, clock } = this.#options;
    const name = persistentGroupNameOf(group, link.topic);
    let failures = 0;
    let joinedAt: number | undefined;
    let createDenied = false;
    while (!this.#closing) {
      try {
        // The subscription starts at the end of the log, and fires are published for the group only once
        // its declaration is read: so creating it first loses nothing published for the group.
        await this.#store
          .ensurePersistentGroup(name, {
            streamPattern: firesStreamPattern(link.topic),
            messageTimeoutMs: this.#direct.messageTimeoutMs,
            maxRetryCount: this.#direct.maxRetryCount,
          })
          .catch((err: unknown) => {
            // Creating needs admin rights on a secure server; joining one an admin created does not.
            if (errorType(err) !== 'access-denied') throw err;
            createDenied = true;
          });
        await changeGroups(this.#store, (groups) =>
          groups.get(link.topic)?.includes(group)
            ? []
            : [
                groupEvent(
                  'DirectGroupDeclared',
                  { group, topic: link.topic, consumer: consumerId, at: iso(clock.now()) },
                  `consumer:${consumerId}`,
                ),
              ],
        );
        if (this.#closing) return;
        await new Promise<void>((resolve, reject) => {
          const subscription: RxSubscription = this.#store
            .joinPersistentGroup(name, {
              bufferSize: this.#direct.bufferSize,
              confirmed: () => {
                joinedAt = clock.now();
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
        if (this.#closing) return;
        const error = err instanceof Error ? err : new Error(String(err));
        const type = errorType(err);
        // Not allowed to create the group, and nobody else has: only an admin can cure that.
        const missing = createDenied && type === 'persistent-subscription-does-not-exist';
        if (PERMANENT_ERRORS.has(type) || missing) {
          this.#setState(link, 'failed', error);
          if (this.#links.every((l) => l.state === 'failed')) this.#rejectReady(error);
          return;
        }
        // A link that held for a while starts its backoff afresh; one dropped right after joining does not.
        if (joinedAt !== undefined && clock.now() - joinedAt >= backoff.maxDelay) failures = 0;
        joinedAt = undefined;
        this.#setState(link, 'reconnecting', error);
        await this.#sleep(backoffDelay(backoff, failures++));
      }
    }
  }

  #receive(topic: string, message: GroupMessage): void {
    const { group, clock, onError } = this.#options;
    // Going away: another consumer of the group takes it at once.
    if (this.#closing) return void message.nack('retry', 'consumer closing').catch(() => {});
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
    // Published for other groups only: this one had answered already, or was not declared yet when the
    // node routed the fire, so the node expects nothing from it.
    if (!fire.groups.includes(group)) return void message.ack().catch(() => {});
    const remaining = fire.deadline - clock.now();
    // Past its deadline (by this machine's clock) the node has recorded a timeout, or is about to; its
    // retry policy sends a new attempt if any.
    if (remaining <= 0) return void message.ack().catch(() => {});

    let done!: () => void;
    const work = new Promise<void>((resolve) => (done = resolve));
    this.#work.add(work);
    void work.then(() => this.#work.delete(work));
    const deadline = clock.setTimer(() => {
      this.#timers.delete(deadline);
      this.#runner.abort(fire.fireId, fire.attempt, new Error('the fire passed its deadline'));
    }, remaining);
    this.#timers.add(deadline);
    const { v: _v, node: _node, groups: _groups, ...fields } = fire;
    this.#runner.receive(
      // Each receipt its own delivery (a redelivery has a higher retry count), so each is answered and acked.
      { v: PROTOCOL_VERSION, type: 'fire', deliveryId: `${message.event.id}#${message.retryCount}`, ...fields, topic },
      (_deliveryId, outcome) => {
        deadline.cancel();
        this.#timers.delete(deadline);
        void this.#settle(fire, outcome, message).finally(done);
      },
    );
  }

  /** Records the outcome (once per attempt at a time), then acks or, when closing without it, nacks. */
  async #settle(fire: FirePublished['data'], outcome: Outcome, message: GroupMessage): Promise<void> {
    if (this.#abandoning) return void (await message.nack('retry', 'consumer closed').catch(() => {}));
    if (this.#recordedEvents.has(message.event.id)) return void (await message.ack().catch(() => {}));
    const key = `${fire.fireId}#${fire.attempt}`;
    let recording = this.#recording.get(key);
    if (!recording) {
      recording = this.#record(fire, outcome);
      this.#recording.set(key, recording);
      void recording.then(() => this.#recording.delete(key));
    }
    const recorded = await recording;
    if (recorded === 'recorded') {
      this.#recordedEvents.set(message.event.id, true);
    }
    if (recorded === 'closing') await message.nack('retry', 'outcome not recorded').catch(() => {});
    else await message.ack().catch(() => {});
  }

  /**
   * Appends the outcome, retrying with backoff while the store refuses: a nack would hand the fire to
   * another consumer, which has not handled it and would run it again. Gives up at the attempt's deadline
   * (the node records a timeout) or when closing.
   */
  async #record(fire: FirePublished['data'], outcome: Outcome): Promise<Recorded> {
    const { group, consumerId, clock, backoff, onError } = this.#options;
    const data: FireHandled['data'] = {
      v: 1,
      fireId: fire.fireId,
      attempt: fire.attempt,
      taskId: fire.taskId,
      group,
      consumer: consumerId,
      status: outcome.status,
      ...(outcome.message === undefined ? {} : { message: outcome.message.slice(0, 1000) }),
      at: iso(clock.now()),
    };
    const event = {
      id: newEventId(clock.now()),
      type: 'FireHandled',
      data,
      metadata: { actor: `consumer:${consumerId}` },
    };
    for (let failures = 0; ; failures++) {
      try {
        await this.#store.appendToStream(outcomesStreamOf(fire.topic), [event]);
        return 'recorded';
      } catch (err) {
        if (this.#closing) return 'closing';
        const wait = backoffDelay(backoff, failures);
        if (clock.now() + wait >= fire.deadline) {
          onError(
            new Error(
              `outcome of fire ${fire.fireId} attempt ${fire.attempt} not recorded by its deadline: ${String(err)}`,
            ),
          );
          return 'expired';
        }
        await this.#sleep(wait);
      }
    }
  }

  #setState(link: TopicLink, state: ConnectionState, error?: Error): void {
    link.state = state;
    this.#options.onStateChange({
      url: `${redacted(this.#storeUrl)}#${link.topic}`,
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

type Recorded = 'recorded' | 'expired' | 'closing';

type TopicLink = {
  topic: string;
  state: ConnectionState;
  confirmed: boolean;
  joined: { leave(): void } | undefined;
};

/**
 * Appends what `decide` makes of the declared groups to `kairos-direct-groups`, at the revision read;
 * when another writer came first, reads again and decides again.
 */
const changeGroups = async (
  store: EsdbEventStore,
  decide: (groups: DirectGroups, events: readonly RecordedEvent[]) => EventData[],
): Promise<EventData[]> => {
  for (let tries = 1; ; tries++) {
    const events = await store.readStream(DIRECT_GROUPS_STREAM);
    const changes = decide(directGroupsOf(events), events);
    if (changes.length === 0) return changes;
    try {
      await store.appendToStream(DIRECT_GROUPS_STREAM, changes, {
        expectedRevision: events.at(-1)?.revision ?? 'no_stream',
      });
      return changes;
    } catch (err) {
      if (!isWrongExpectedVersionError(err) || tries >= 10) throw err;
    }
  }
};

const groupEvent = (
  type: DirectGroupEvent['type'],
  data: Omit<DirectGroupEvent['data'], 'v'>,
  actor: string,
): EventData => ({ id: randomUUID(), type, data: { v: 1, ...data }, metadata: { actor } });

/**
 * Retires a direct group for `topics` (default: every topic it was ever declared for): nodes stop
 * waiting for its outcomes, and its persistent subscriptions (with their parked fires) are deleted.
 * Returns the topics it was declared for. Safe to run again after a failure part-way. A consumer of the
 * group still running declares it again.
 */
export const retireDirectGroup = async (options: {
  store: string;
  group: string;
  topics?: readonly string[];
  actor?: string;
}): Promise<string[]> => {
  mustBeEsdbUrl(options.store);
  const group = GroupName.safeParse(options.group);
  if (!group.success) throw new ValidationError(fieldIssuesOf(group.error, options.group, 'group'));
  const topics = options.topics?.map((topic, i) => {
    const parsed = TopicName.safeParse(topic);
    if (!parsed.success) throw new ValidationError(fieldIssuesOf(parsed.error, topic, `topics[${i}]`));
    return parsed.data;
  });
  const store = openEsdbStore(options.store);
  try {
    let everDeclared: string[] = [];
    const retired = await changeGroups(store, (groups, events) => {
      everDeclared = topicsEverDeclared(events, group.data);
      return (topics ?? everDeclared)
        .filter((topic) => groups.get(topic)?.includes(group.data))
        .map((topic) =>
          groupEvent('DirectGroupRetired', { group: group.data, topic, at: iso(Date.now()) }, options.actor ?? 'sdk'),
        );
    });
    // Also for topics retired before: a run that failed after its append left their subscriptions behind.
    for (const topic of topics ?? everDeclared)
      await store.deletePersistentGroup(persistentGroupNameOf(group.data, topic));
    return retired.map((e) => (e.data as { topic: string }).topic);
  } finally {
    await store.close();
  }
};

const topicsEverDeclared = (events: readonly RecordedEvent[], group: string): string[] => {
  const topics = new Set<string>();
  for (const { data } of directGroupEventsOf(events)) if (data.group === group) topics.add(data.topic);
  return [...topics];
};

const mustBeEsdbUrl = (store: string): void => {
  if (!isEsdbUrl(store)) {
    throw new ValidationError([
      { path: 'store', message: 'must be an EventStoreDB connection string (esdb://host:2113?tls=false)' },
    ]);
  }
};

const errorType = (err: unknown): string => (err as { type?: unknown } | null)?.type?.toString() ?? '';

const iso = (ms: number): string => new Date(ms).toISOString();

/** A connection string with its password hidden, for state changes and logs. */
const redacted = (url: string): string => url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
