import type { Observable, Subscription } from 'rxjs';
import { IllegalStateError } from '../../../domain/errors/index.js';
import { HubConnection, type ConnectionHooks } from '../../client/hubConnection.js';
import { endpointOf } from '../../client/subscribe.js';
import { systemClock, type Clock, type TimerHandle } from '../../clock/clock.js';
import type { ClusterMember } from '../../coordination/coordinator.js';
import { PROTOCOL_VERSION, type ClientMessage } from './protocol.js';
import { DeliveryRoutes, peerChanges, relayConsumerId, relayPeers } from './relayRouting.js';
import type { ConsumerIdentity, ConsumerLink, ConsumerRelayPort, RelaySession, TopicHub } from './topicHub.js';

/** How long a closing upstream waits for the peer's close frame: a frozen peer must not hold up a node's stop. */
const CLOSE_GRACE_MS = 2_000;

type Logger = { warn(details: object, message: string): void; debug(details: object, message: string): void };

export type ConsumerRelayOptions = {
  /** This node's id: the `relay` marker of its upstream connections and the suffix of their consumer ids. */
  nodeId: string;
  hub: Pick<TopicHub, 'setRelay'>;
  /** The live members with their API addresses (`SchedulerNode.members$()`). */
  members$: Observable<readonly ClusterMember[]>;
  /**
   * How long the upstream to a member that left stays open: a node stopping gracefully leaves the
   * membership first and then drains, and the outcomes of its fires must still reach it. @default 15_000
   */
  retireAfterMs?: number;
  /** Backoff between reconnects of an upstream, in ms. @default { initialDelay: 200, maxDelay: 10000 } */
  reconnect?: { initialDelay?: number; maxDelay?: number };
  /** @default systemClock */
  clock?: Clock;
  /** @default console */
  logger?: Logger;
};

type Context = Required<Pick<ConsumerRelayOptions, 'nodeId' | 'clock' | 'logger' | 'retireAfterMs'>> & {
  backoff: ConnectionHooks['backoff'];
  /** Keeps an upstream's close in view until it is done, for `ConsumerRelay.close()`. */
  closing(done: Promise<void>): void;
};

/**
 * Brings every other node's topic fires to the consumers connected to this one. For each direct consumer
 * (group G, topics T, id C) it subscribes to each live peer, over the ordinary subscriber protocol, as
 * consumer `C@<nodeId>` of G marked `relay=<nodeId>`; the peer's hub treats it as any consumer (its
 * once-per-group choice, ack timeout and redelivery apply unchanged) and never relays it onward. Fires
 * and cancels from a peer go down the consumer's own link; its acks and outcomes go back to the peer that
 * sent the delivery. Upstream connections reuse the SDK's `HubConnection` (reconnect with backoff, dead
 * link watchdog) and follow the membership: opened when a peer joins, closed when it leaves or the
 * consumer goes.
 */
export class ConsumerRelay implements ConsumerRelayPort {
  readonly #hub: ConsumerRelayOptions['hub'];
  readonly #members$: ConsumerRelayOptions['members$'];
  readonly #context: Context;
  readonly #relayed = new Set<RelayedConsumer>();
  readonly #closing = new Set<Promise<void>>();
  #peers = new Map<string, string>();
  #membership: Subscription | undefined;
  #state: 'created' | 'running' | 'closed' = 'created';

  constructor(options: ConsumerRelayOptions) {
    this.#hub = options.hub;
    this.#members$ = options.members$;
    this.#context = {
      nodeId: options.nodeId,
      clock: options.clock ?? systemClock,
      logger: options.logger ?? console,
      retireAfterMs: options.retireAfterMs ?? 15_000,
      backoff: {
        initialDelay: options.reconnect?.initialDelay ?? 200,
        maxDelay: options.reconnect?.maxDelay ?? 10_000,
      },
      closing: (done) => {
        this.#closing.add(done);
        void done.finally(() => this.#closing.delete(done));
      },
    };
  }

  /** Follows the membership and serves the hub's consumers, those already connected included. */
  start(): void {
    if (this.#state !== 'created') throw new IllegalStateError(`cannot start a consumer relay that is ${this.#state}`);
    this.#state = 'running';
    this.#membership = this.#members$.subscribe({
      next: (members) => {
        this.#peers = relayPeers(members, this.#context.nodeId);
        for (const relayed of this.#relayed) relayed.follow(this.#peers);
      },
      // The relays keep following the last membership seen: better than none, and never a crash.
      error: (err: unknown) => this.#context.logger.warn({ err }, 'consumer relay: the membership feed failed'),
    });
    this.#hub.setRelay(this);
  }

  /** Called by the hub for each direct consumer. */
  open(identity: ConsumerIdentity, link: ConsumerLink): RelaySession {
    const relayed = new RelayedConsumer(identity, link, this.#context);
    this.#relayed.add(relayed);
    relayed.follow(this.#peers);
    return {
      receive: (message) => relayed.receive(message),
      close: () => {
        this.#relayed.delete(relayed);
        relayed.close();
      },
    };
  }

  /** Closes every upstream connection; resolves once their sockets are closed. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#membership?.unsubscribe();
    this.#hub.setRelay(null);
    await Promise.all([...this.#closing]);
  }
}

type Upstream = { address: string; connection: HubConnection; retire?: TimerHandle };

/** One direct consumer's upstream connections, one per peer, and the routes of the fires they brought. */
class RelayedConsumer {
  readonly #upstreams = new Map<string, Upstream>();
  readonly #routes = new DeliveryRoutes<HubConnection>();
  #closed = false;

  constructor(
    private readonly identity: ConsumerIdentity,
    private readonly link: ConsumerLink,
    private readonly context: Context,
  ) {}

  follow(peers: ReadonlyMap<string, string>): void {
    if (this.#closed) return;
    const current = new Map([...this.#upstreams].map(([peer, upstream]) => [peer, upstream.address]));
    const { close, open } = peerChanges(current, peers);
    for (const peer of close) {
      if (peers.has(peer)) this.#close(peer);
      else this.#retire(peer);
    }
    for (const [peer, address] of open) this.#open(peer, address);
    // A peer back before its upstream was retired (a quick restart) keeps it.
    for (const peer of peers.keys()) {
      const upstream = this.#upstreams.get(peer);
      upstream?.retire?.cancel();
      if (upstream) delete upstream.retire;
    }
  }

  receive(message: ClientMessage): boolean {
    const connection = this.#routes.route(message);
    // A peer that is reconnecting drops the answer; it redelivers, and the consumer answers again.
    connection?.send(message);
    return connection !== undefined;
  }

  close(): void {
    this.#closed = true;
    for (const peer of [...this.#upstreams.keys()]) this.#close(peer);
  }

  #open(peer: string, address: string): void {
    const { nodeId, logger } = this.context;
    const { group, topics, consumerId } = this.identity;
    let endpoint: string;
    try {
      endpoint = endpointOf(address, {
        group,
        topics: [...topics],
        consumer: relayConsumerId(consumerId, nodeId),
        relay: nodeId,
      });
    } catch (err) {
      logger.warn({ err, peer, address }, 'consumer relay: the peer publishes an unusable address');
      return;
    }
    const connection = new HubConnection(address, endpoint, this.#hooks(peer));
    this.#upstreams.set(peer, { address, connection });
    connection.connect();
  }

  /** The peer left the membership: its upstream stays a while for the answers to fires it is draining. */
  #retire(peer: string): void {
    const upstream = this.#upstreams.get(peer);
    if (!upstream || upstream.retire) return;
    upstream.retire = this.context.clock.setTimer(() => this.#close(peer, upstream), this.context.retireAfterMs);
  }

  #close(peer: string, only?: Upstream): void {
    const upstream = this.#upstreams.get(peer);
    if (!upstream || (only && upstream !== only)) return;
    upstream.retire?.cancel();
    this.#upstreams.delete(peer);
    this.#routes.drop(upstream.connection);
    this.context.closing(upstream.connection.close(CLOSE_GRACE_MS));
  }

  #hooks(peer: string): ConnectionHooks {
    const { clock, backoff, logger } = this.context;
    const details = { peer, group: this.identity.group, consumer: this.identity.consumerId };
    // A closing upstream may still deliver a frame or two: only the current one speaks for the peer.
    const current = (connection: HubConnection): boolean => this.#upstreams.get(peer)?.connection === connection;
    return {
      clock,
      backoff,
      fired: (message, connection) => {
        if (!current(connection)) return;
        this.#routes.fired(message.deliveryId, connection);
        this.link.send(message);
      },
      cancelled: (deliveryId, connection) => {
        if (this.#routes.cancelled(deliveryId, connection)) {
          this.link.send({ v: PROTOCOL_VERSION, type: 'cancel', deliveryId });
        }
      },
      welcomed: () => logger.debug(details, 'consumer relay: upstream open'),
      changed: ({ state, error }) => {
        if (state === 'failed') logger.warn({ ...details, err: error }, 'consumer relay: the peer refused the relay');
        else if (state === 'reconnecting') logger.debug({ ...details, err: error }, 'consumer relay: upstream lost');
      },
      error: (err) => logger.warn({ ...details, err }, 'consumer relay: the peer reported an error'),
    };
  }
}
