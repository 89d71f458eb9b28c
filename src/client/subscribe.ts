import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ValidationError, fieldIssuesOf } from '../../domain/errors/index.js';
import { systemClock, type Clock } from '../clock/clock.js';
import { PACKED_FRAMES } from '../targets/topic/frames.js';
import { SubscribeQuery } from '../targets/topic/protocol.js';
import type { CompiledOptions } from './compiledOptions.js';
import { DirectSubscription, type DirectModeOptions } from './directSubscription.js';
import { FireRunner, type FireHandler } from './fireRunner.js';
import { HubConnection, type ConnectionHooks, type ConnectionState, type StateChange } from './hubConnection.js';

export type SubscribeOptions = {
  /**
   * A node's base URL (`http://host:8080`, `ws://host:8080`) or its full subscribe endpoint. In a cluster
   * one node is enough: it relays the fires of the tasks the other nodes hold. Several URLs give one
   * connection per node, for failover.
   */
  url?: string | readonly string[];
  /**
   * Direct mode instead of `url`: an EventStoreDB connection string (`esdb://host:2113?tls=false`). Fires
   * come straight from the log as competing consumers of a persistent subscription per group and topic,
   * and outcomes go back to it; no node needs to be reachable (docs/subscribers.md, "Direct mode").
   */
  store?: string;
  /** Settings of direct mode's persistent subscriptions. */
  direct?: DirectModeOptions;
  group: string;
  topics: readonly string[];
  /** @default "<hostname>-<pid>-<random>" */
  consumerId?: string;
  /** Exponential backoff between reconnects, in ms. @default { initialDelay: 200, maxDelay: 10000 } */
  reconnect?: { initialDelay?: number; maxDelay?: number };
  /**
   * How many finished fires are remembered to answer redeliveries without running the handler. A
   * redelivery comes after the hub's ack timeout (5 s by default): the default covers it at 20,000
   * fires/s (~15 MB). @default 100000
   */
  dedupeSize?: number;
  onStateChange?: (change: StateChange) => void;
  /** Errors the hub reported and messages the SDK could not read. */
  onError?: (error: Error) => void;
  /** @default systemClock */
  clock?: Clock;
};

export type Subscription = {
  readonly consumerId: string;
  /**
   * Resolves once connected (a node's first `welcome`; in direct mode, every topic's subscription joined);
   * rejects if every connection failed for good (refused subscription, access denied) or close() came first.
   */
  readonly ready: Promise<void>;
  /** The best state among the connections (`open` if any is open). */
  readonly state: ConnectionState;
  /**
   * Closes every connection; running handlers are aborted. From a node, their fires go to other consumers;
   * in direct mode, outcomes of handlers that finish within a short grace are recorded first.
   */
  close(): Promise<void>;
};

/**
 * Subscribes `handler` to the fires of `topics` as one consumer of `group`: from a node (`url`), where
 * each fire is acked on receipt, or in direct mode from EventStoreDB (`store`), where it is acked once its
 * outcome is recorded. The handler resolving reports success, throwing reports failure with the error's
 * message.
 */
export const subscribe = (options: SubscribeOptions, handler: FireHandler): Subscription => {
  if ((options.url === undefined) === (options.store === undefined)) {
    throw new ValidationError([
      {
        path: options.url === undefined ? 'url' : 'store',
        message: 'give either url (a Kairos node) or store (EventStoreDB, direct mode), not both',
      },
    ]);
  }
  const compiled = compile(options);
  if (options.url !== undefined) return new TopicSubscription(compiled, options.url, handler);
  return new DirectSubscription(compiled, options.store!, compileDirect(options.direct ?? {}), handler);
};

const compile = (options: SubscribeOptions): CompiledOptions => {
  const consumerId = options.consumerId ?? defaultConsumerId();
  const query = SubscribeQuery.safeParse({
    group: options.group,
    topics: options.topics.join(','),
    consumer: consumerId,
  });
  if (!query.success) throw new ValidationError(fieldIssuesOf(query.error));
  return {
    group: query.data.group,
    topics: [...new Set(query.data.topics)],
    consumerId,
    backoff: {
      initialDelay: options.reconnect?.initialDelay ?? 200,
      maxDelay: options.reconnect?.maxDelay ?? 10_000,
    },
    dedupeSize: options.dedupeSize ?? 100_000,
    clock: options.clock ?? systemClock,
    onStateChange: guard(options.onStateChange),
    onError: guard(options.onError),
  };
};

const positiveInteger = (path: string, value: number | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new ValidationError([{ path, message: 'must be a positive integer' }]);
  return value;
};

const compileDirect = (options: DirectModeOptions): Required<DirectModeOptions> => ({
  messageTimeoutMs: positiveInteger('direct.messageTimeoutMs', options.messageTimeoutMs, 30_000),
  maxRetryCount: positiveInteger('direct.maxRetryCount', options.maxRetryCount, 10),
  bufferSize: positiveInteger('direct.bufferSize', options.bufferSize, 10),
  closeTimeoutMs: positiveInteger('direct.closeTimeoutMs', options.closeTimeoutMs, 5_000),
});

/** A throwing user callback must not break the socket's or the subscription's event loop. */
const guard =
  <A>(callback: ((arg: A) => void) | undefined) =>
  (arg: A): void => {
    try {
      callback?.(arg);
    } catch {
      // swallowed on purpose: see above
    }
  };

const STATE_RANK: readonly ConnectionState[] = ['open', 'reconnecting', 'connecting', 'failed', 'closed'];

class TopicSubscription implements Subscription {
  readonly consumerId: string;
  readonly ready: Promise<void>;
  readonly #connections: HubConnection[];
  readonly #runner: FireRunner;
  #resolveReady!: () => void;
  #rejectReady!: (error: Error) => void;

  constructor(options: CompiledOptions, url: string | readonly string[], handler: FireHandler) {
    this.consumerId = options.consumerId;
    const urls = typeof url === 'string' ? [url] : [...url];
    if (urls.length === 0) throw new ValidationError([{ path: 'url', message: 'must name at least one node' }]);
    const query: SubscribeQuery = { group: options.group, topics: [...options.topics], consumer: options.consumerId };

    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // Callers that never await `ready` must not get an unhandled rejection.
    this.ready.catch(() => {});
    this.#runner = new FireRunner(handler, options.dedupeSize);
    const runner = this.#runner;
    const hooks: ConnectionHooks = {
      fired: (message, connection) => {
        connection.send({ type: 'ack', deliveryId: message.deliveryId });
        runner.receive(message, (deliveryId, outcome) => connection.send({ type: 'outcome', deliveryId, ...outcome }));
      },
      cancelled: (deliveryId) => runner.cancel(deliveryId),
      clock: options.clock,
      backoff: options.backoff,
      welcomed: () => this.#resolveReady(),
      error: options.onError,
      changed: (change) => {
        options.onStateChange(change);
        if (change.state === 'failed' && this.#connections.every((c) => c.state === 'failed'))
          this.#rejectReady(change.error ?? new Error('subscription failed'));
      },
    };
    this.#connections = urls.map((u) => new HubConnection(u, endpointOf(u, query), hooks));
    for (const connection of this.#connections) connection.connect();
  }

  get state(): ConnectionState {
    return STATE_RANK.find((state) => this.#connections.some((c) => c.state === state)) ?? 'closed';
  }

  async close(): Promise<void> {
    this.#rejectReady(new Error('subscription closed before it connected'));
    this.#runner.abortAll(new Error('subscription closed'));
    await Promise.all(this.#connections.map((c) => c.close()));
  }
}

/** The subscribe endpoint for a node's base URL or full endpoint; a ValidationError names `url`. */
export const endpointOf = (base: string, query: SubscribeQuery): string => {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new ValidationError([
      { path: 'url', message: `must be an http(s):// or ws(s):// URL, got ${JSON.stringify(base)}` },
    ]);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new ValidationError([
      { path: 'url', message: `must be an http(s):// or ws(s):// URL, got ${JSON.stringify(base)}` },
    ]);
  }
  if (url.pathname === '/') url.pathname = '/api/subscribe';
  url.searchParams.set('group', query.group);
  url.searchParams.set('topics', query.topics.join(','));
  url.searchParams.set('consumer', query.consumer);
  if (query.relay !== undefined) url.searchParams.set('relay', query.relay);
  // Every HubConnection reads packed frames.
  url.searchParams.set('frames', PACKED_FRAMES);
  return url.toString();
};

const defaultConsumerId = (): string =>
  `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`.replace(/[^A-Za-z0-9._:@-]/g, '-').slice(0, 200);
