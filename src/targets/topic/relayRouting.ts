import { createHash } from 'node:crypto';
import type { ClusterMember } from '../../coordination/coordinator.js';
import type { ClientMessage } from './protocol.js';

/**
 * The pure half of the consumer relay (`consumerRelay.ts`): whom a node relays to, under which consumer
 * id, and where a consumer's answer to a relayed fire must go.
 */

const MAX_CONSUMER_ID = 200;

/**
 * The consumer id under which node `nodeId` relays its consumer `consumerId` to a peer:
 * `<consumerId>@<nodeId>`. Unique on the peer, since a node holds one live connection per group and
 * consumer id. An id that would exceed the protocol's 200 characters keeps its start and takes a hash of
 * the whole consumer id for the rest, so two long ids that share a start stay apart.
 */
export const relayConsumerId = (consumerId: string, nodeId: string): string => {
  const id = `${consumerId}@${nodeId}`;
  if (id.length <= MAX_CONSUMER_ID) return id;
  const hash = createHash('sha256').update(consumerId).digest('hex').slice(0, 12);
  return `${consumerId.slice(0, MAX_CONSUMER_ID - nodeId.length - hash.length - 2)}.${hash}@${nodeId}`;
};

/** The members a node relays to, id → API base URL: every live member but itself that publishes an address. */
export const relayPeers = (members: readonly ClusterMember[], self: string): Map<string, string> =>
  new Map(members.filter((m) => m.id !== self && m.address).map((m) => [m.id, m.address!]));

export type PeerChanges = { open: Array<[peer: string, address: string]>; close: string[] };

/** Turns the relays to `current` peers into relays to `next`; a peer whose address changed is closed and reopened. */
export const peerChanges = (current: ReadonlyMap<string, string>, next: ReadonlyMap<string, string>): PeerChanges => ({
  close: [...current].filter(([peer, address]) => next.get(peer) !== address).map(([peer]) => peer),
  open: [...next].filter(([peer, address]) => current.get(peer) !== address),
});

/**
 * Which upstream sent each fire a relay forwarded, so the consumer's ack and outcome go back to it.
 * Delivery ids are random UUIDs minted by each hub, so they never collide across upstreams. A route
 * lasts until the outcome, the upstream's cancel, or the end of the upstream: a consumer answer without
 * a route is not for a relayed fire.
 */
export class DeliveryRoutes<U> {
  readonly #upstreamOf = new Map<string, U>();

  /** A redelivery of the same id (the peer's ack timeout, a reconnect) keeps a single route. */
  fired(deliveryId: string, upstream: U): void {
    this.#upstreamOf.set(deliveryId, upstream);
  }

  /** The upstream withdrew a delivery; true when it was routed through it, so the consumer must be told. */
  cancelled(deliveryId: string, upstream: U): boolean {
    if (this.#upstreamOf.get(deliveryId) !== upstream) return false;
    this.#upstreamOf.delete(deliveryId);
    return true;
  }

  /** Where a consumer's ack or outcome goes, if it answers a relayed fire; an outcome ends the route. */
  route(message: ClientMessage): U | undefined {
    const upstream = this.#upstreamOf.get(message.deliveryId);
    if (upstream !== undefined && message.type === 'outcome') this.#upstreamOf.delete(message.deliveryId);
    return upstream;
  }

  /** The upstream is closed for good: its peer hands those deliveries to other consumers. */
  drop(upstream: U): void {
    for (const [deliveryId, u] of this.#upstreamOf) if (u === upstream) this.#upstreamOf.delete(deliveryId);
  }

  get size(): number {
    return this.#upstreamOf.size;
  }
}
