import type { Subscription } from 'rxjs';
import {
  DIRECT_GROUPS_STREAM,
  DirectGroupEvent,
  FireHandled,
  OUTCOMES_STREAM_PREFIX,
  evolveDirectGroups,
  firesStreamOf,
  groupsOfTopic,
  noDirectGroups,
  type DirectGroups,
  type FirePublished,
} from '../../../domain/directDelivery/index.js';
import type { Clock, TimerHandle } from '../../clock/clock.js';
import { newEventId } from '../../store/eventId.js';
import type { EventStore, RecordedEvent } from '../../store/eventStore.js';
import { topicFireFieldsOf, type FireDelivery, type OutcomeDetail } from '../dispatcher.js';
import type { DirectDeliveryPort, TopicHub } from '../topic/topicHub.js';

type Logger = { warn(details: object, message: string): void };

export type DirectDeliveryOptions = {
  store: EventStore;
  hub: TopicHub;
  /** This node's id, recorded as who published a fire. */
  node: string;
  clock: Clock;
  logger: Logger;
  /** Outcomes remembered for attempts this node does not hold (yet): a takeover finds them here. @default 10000 */
  rememberOutcomes?: number;
  /** Pause before following the log again after its subscription failed, in ms. @default 1000 */
  resubscribeAfterMs?: number;
};

/**
 * The node's side of direct mode (docs/subscribers.md): follows which groups are declared direct, writes
 * each topic fire such a group expects to `kairos-fires-<topic>` (where the group's persistent
 * subscription picks it up), and hands the outcomes its consumers write to `kairos-outcomes-<topic>` to
 * the hub, which settles the attempt like any other group's answer.
 */
export class DirectDelivery implements DirectDeliveryPort {
  readonly #options: DirectDeliveryOptions;
  #groups: DirectGroups = noDirectGroups;
  /** The last revision of `kairos-direct-groups` folded in: the stream is read, then followed. */
  #groupsRevision = -1n;
  #position = 0n;
  /** Outcomes read from the log, by attempt and group; a Map iterates oldest first, so it trims as an LRU. */
  readonly #outcomes = new Map<string, OutcomeDetail>();
  readonly #publishing = new Set<Promise<void>>();
  readonly #retries = new Set<TimerHandle>();
  #subscription: Subscription | undefined;
  #closed = false;

  constructor(options: DirectDeliveryOptions) {
    this.#options = options;
  }

  /** Reads the declared groups, follows the log from its head, and starts serving the hub. */
  async start(): Promise<void> {
    const { store, hub } = this.#options;
    this.#position = await store.headPosition();
    // Read after taking the head: a declaration between the two is seen twice and folded once.
    for (const event of await store.readStream(DIRECT_GROUPS_STREAM)) this.#apply(event);
    this.#follow();
    hub.setDirect(this);
  }

  groupsOf(topic: string): readonly string[] {
    return groupsOfTopic(this.#groups, topic);
  }

  knownOutcome(fireId: string, attempt: number, group: string): OutcomeDetail | undefined {
    return this.#outcomes.get(outcomeKey(fireId, attempt, group));
  }

  publish(fire: FireDelivery, topic: string, groups: readonly string[]): void {
    const { node, clock, logger } = this.#options;
    const data: FirePublished['data'] = {
      v: 1,
      ...topicFireFieldsOf(fire, topic),
      node,
      groups: [...groups],
    };
    // A fresh id each time: a fire published again (after a takeover) must reach the group again, and
    // consumers dedupe on fireId and attempt anyway.
    const event = { id: newEventId(clock.now()), type: 'FirePublished', data, metadata: { actor: `node:${node}` } };
    const attemptOnce = (delay: number): void => {
      const append = this.#options.store
        .appendToStream(firesStreamOf(topic), [event], { expectedRevision: 'any' })
        .then(
          () => undefined,
          (err: unknown) => {
            // At least once: keep trying while the attempt can still succeed; past its deadline the node
            // records a timeout and the retry policy takes over.
            if (this.#closed || clock.now() + delay >= fire.deadline) {
              logger.warn(
                { err, fireId: fire.fireId, attempt: fire.attempt, topic },
                'direct delivery: could not publish the fire',
              );
              return;
            }
            const timer = clock.setTimer(() => {
              this.#retries.delete(timer);
              attemptOnce(Math.min(delay * 2, 5_000));
            }, delay);
            this.#retries.add(timer);
          },
        )
        .finally(() => this.#publishing.delete(append));
      this.#publishing.add(append);
    };
    attemptOnce(100);
  }

  /** Stops following the log and waits for publishes under way; the hub is told to stop first. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#options.hub.setDirect(null);
    this.#subscription?.unsubscribe();
    for (const timer of this.#retries) timer.cancel();
    this.#retries.clear();
    await Promise.allSettled([...this.#publishing]);
  }

  #follow(): void {
    const { store, clock, logger } = this.#options;
    this.#subscription = store
      .subscribeToAll({ after: this.#position, streamPrefixes: [DIRECT_GROUPS_STREAM, OUTCOMES_STREAM_PREFIX] })
      .subscribe({
        next: (event) => {
          this.#position = event.position;
          this.#apply(event);
        },
        error: (err: unknown) => {
          if (this.#closed) return;
          logger.warn({ err }, 'direct delivery: following the log failed; following it again');
          const timer = clock.setTimer(() => {
            this.#retries.delete(timer);
            if (!this.#closed) this.#follow();
          }, this.#options.resubscribeAfterMs ?? 1_000);
          this.#retries.add(timer);
        },
      });
  }

  #apply(event: RecordedEvent): void {
    if (event.stream === DIRECT_GROUPS_STREAM) this.#applyGroupEvent(event);
    else if (event.stream.startsWith(OUTCOMES_STREAM_PREFIX)) this.#applyOutcome(event);
  }

  #applyGroupEvent(event: RecordedEvent): void {
    if (event.revision <= this.#groupsRevision) return;
    this.#groupsRevision = event.revision;
    const parsed = DirectGroupEvent.safeParse({ type: event.type, data: event.data });
    if (!parsed.success) {
      this.#options.logger.warn(
        { stream: event.stream, revision: String(event.revision) },
        'direct delivery: unreadable group event skipped',
      );
      return;
    }
    const before = this.#groups;
    this.#groups = evolveDirectGroups(before, parsed.data);
    if (this.#groups !== before) this.#options.hub.directGroupsChanged(parsed.data.data.topic);
  }

  #applyOutcome(event: RecordedEvent): void {
    const parsed = FireHandled.safeParse({ type: event.type, data: event.data });
    if (!parsed.success) {
      this.#options.logger.warn(
        { stream: event.stream, revision: String(event.revision) },
        'direct delivery: unreadable outcome skipped',
      );
      return;
    }
    const { fireId, attempt, group, consumer, status, message } = parsed.data.data;
    const detail: OutcomeDetail = { group, consumer, status, ...(message === undefined ? {} : { message }) };
    const key = outcomeKey(fireId, attempt, group);
    this.#outcomes.delete(key);
    this.#outcomes.set(key, detail);
    if (this.#outcomes.size > (this.#options.rememberOutcomes ?? 10_000))
      this.#outcomes.delete(this.#outcomes.keys().next().value!);
    this.#options.hub.settleDirect({ ...detail, group, fireId, attempt });
  }
}

const outcomeKey = (fireId: string, attempt: number, group: string): string => `${fireId}#${attempt}#${group}`;
