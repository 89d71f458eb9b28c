// EventStoreDB protocol stand-in for tests (not EventStoreDB): one persistent subscription group to $all, as the
// server's PersistentSubscription runs it. Consumers compete for its events; each holds at most `bufferSize`
// un-acked messages. Retries go out before new events. A message is retried (retryCount + 1) when nacked with
// retry or when its `messageTimeout` passes, and parked instead once it has been retried `maxRetryCount` times;
// a consumer that goes away hands its messages back with retryCount 1.
import { randomUUID } from 'node:crypto';
import { ExpectedVersion, type EventLog, type StoredEvent } from './eventLog.js';
import type { EventFilter } from './wire.js';

export const ConsumerStrategy = {
  roundRobin: 'RoundRobin',
  dispatchToSingle: 'DispatchToSingle',
  pinned: 'Pinned',
} as const;
export type ConsumerStrategy = (typeof ConsumerStrategy)[keyof typeof ConsumerStrategy];

export type GroupSettings = {
  /** 0: messages never time out. */
  readonly messageTimeoutMs: number;
  readonly maxRetryCount: number;
  /** 0: unbounded. */
  readonly maxSubscriberCount: number;
  readonly strategy: ConsumerStrategy;
};

export type NackAction = 'unknown' | 'park' | 'retry' | 'skip' | 'stop';

export type Consumer = {
  readonly maxInFlight: number;
  readonly deliver: (event: StoredEvent, retryCount: number) => void;
  /** Ends the consumer's call: the group was updated or deleted. */
  readonly drop: () => void;
};

type Message = { readonly event: StoredEvent; readonly retryCount: number };
type Outstanding = Message & { readonly consumer: Consumer; readonly expiresAt: number };

export class PersistentGroup {
  private readonly retries: Message[] = [];
  private readonly outstanding = new Map<string, Outstanding>();
  private consumers: Consumer[] = [];
  private nextRoundRobin = 0;
  /** Messages sent to consumers, retries included: what tests look at to see a redelivery happen. */
  sent = 0;

  constructor(
    readonly name: string,
    private readonly log: EventLog,
    private readonly filter: EventFilter,
    /** Index in the log of the next event to consider. */
    private next: number,
    public settings: GroupSettings,
  ) {}

  get isFull(): boolean {
    return this.settings.maxSubscriberCount > 0 && this.consumers.length >= this.settings.maxSubscriberCount;
  }

  get parkedStream(): string {
    return `$persistentsubscription-$all::${this.name}-parked`;
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.pump();
  }

  removeConsumer(consumer: Consumer): void {
    if (!this.consumers.includes(consumer)) return;
    this.consumers = this.consumers.filter((c) => c !== consumer);
    const lost = [...this.outstanding.values()].filter((m) => m.consumer === consumer);
    for (const m of lost) this.requeue(m.event, 1);
    this.pump();
  }

  ack(ids: readonly string[]): void {
    for (const id of ids) this.outstanding.delete(id);
    this.pump();
  }

  nack(action: NackAction, ids: readonly string[], reason: string): void {
    for (const id of ids) {
      const message = this.outstanding.get(id);
      if (!message) continue;
      this.outstanding.delete(id);
      // `stop` is accepted and ignored by the server, which then forgets the message like `skip`.
      if (action === 'park') this.park(message.event, `Client explicitly NAK'ed message.\n${reason}`);
      else if (action === 'retry' || action === 'unknown') this.retryOrPark(message);
    }
    this.pump();
  }

  /** The server's clock tick (once a second): messages past their timeout are retried or parked. */
  tick(now: number): void {
    for (const [id, message] of this.outstanding) {
      if (message.expiresAt > now) continue;
      this.outstanding.delete(id);
      this.retryOrPark(message);
    }
    this.pump();
  }

  /**
   * Update and delete end every consumer's call. The server then starts the group afresh from its last
   * checkpoint, so un-acked messages go out again as new ones.
   */
  dropConsumers(): void {
    const consumers = this.consumers;
    this.consumers = [];
    for (const m of [...this.outstanding.values()]) this.requeue(m.event, 0);
    for (const consumer of consumers) consumer.drop();
  }

  /** Sends what it can: retries first, then new events, while a consumer has room. */
  pump(): void {
    for (;;) {
      const message = this.retries[0] ?? this.peekNew();
      if (!message) return;
      const consumer = this.choose(message.event);
      if (!consumer) return;
      if (message === this.retries[0]) this.retries.shift();
      else this.next += 1;
      const expiresAt =
        this.settings.messageTimeoutMs > 0 ? Date.now() + this.settings.messageTimeoutMs : Number.POSITIVE_INFINITY;
      this.outstanding.set(message.event.id, { ...message, consumer, expiresAt });
      this.sent += 1;
      consumer.deliver(message.event, message.retryCount);
    }
  }

  private peekNew(): Message | undefined {
    for (; this.next < this.log.events.length; this.next += 1) {
      const event = this.log.events[this.next] as StoredEvent;
      if (this.filter(event)) return { event, retryCount: 0 };
    }
    return undefined;
  }

  private choose(event: StoredEvent): Consumer | undefined {
    const hasRoom = (c: Consumer): boolean => this.inFlight(c) < c.maxInFlight;
    const count = this.consumers.length;
    if (count === 0) return undefined;
    switch (this.settings.strategy) {
      case ConsumerStrategy.dispatchToSingle:
        return this.consumers.find(hasRoom);
      case ConsumerStrategy.pinned: {
        // The same stream always goes to the same consumer (while the consumers stay the same).
        const pinned = this.consumers[hashOf(event.stream) % count] as Consumer;
        return hasRoom(pinned) ? pinned : undefined;
      }
      case ConsumerStrategy.roundRobin:
        for (let i = 0; i < count; i++) {
          const consumer = this.consumers[(this.nextRoundRobin + i) % count] as Consumer;
          if (!hasRoom(consumer)) continue;
          this.nextRoundRobin = (this.nextRoundRobin + i + 1) % count;
          return consumer;
        }
        return undefined;
    }
  }

  private inFlight(consumer: Consumer): number {
    let count = 0;
    for (const m of this.outstanding.values()) if (m.consumer === consumer) count += 1;
    return count;
  }

  private retryOrPark(message: Message): void {
    if (message.retryCount >= this.settings.maxRetryCount)
      this.park(message.event, `Reached retry count of ${this.settings.maxRetryCount}`);
    else this.requeue(message.event, message.retryCount + 1);
  }

  /** Back in line for delivery, in log order among the other retries. */
  private requeue(event: StoredEvent, retryCount: number): void {
    this.outstanding.delete(event.id);
    const at = this.retries.findIndex((m) => m.event.position > event.position);
    this.retries.splice(at < 0 ? this.retries.length : at, 0, { event, retryCount });
  }

  /** A parked message is a link event in the group's parked stream (which $all filters hide). */
  private park(event: StoredEvent, reason: string): void {
    this.outstanding.delete(event.id);
    this.log.append(this.parkedStream, ExpectedVersion.any, [
      {
        id: randomUUID(),
        type: '$>',
        contentType: 'application/octet-stream',
        data: Buffer.from(`${event.revision}@${event.stream}`),
        metadata: Buffer.from(
          JSON.stringify({ added: new Date().toISOString(), reason, subscriptionEventNumber: event.revision }),
        ),
      },
    ]);
  }
}

const hashOf = (s: string): number => {
  let hash = 0;
  for (let i = 0; i < s.length; i++) hash = (hash * 31 + s.charCodeAt(i)) >>> 0;
  return hash;
};
