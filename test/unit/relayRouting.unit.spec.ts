import { describe, expect, it } from 'vitest';
import type { ClusterMember } from '../../src/coordination/coordinator.js';
import { ConsumerId, type ClientMessage } from '../../src/targets/topic/protocol.js';
import { DeliveryRoutes, peerChanges, relayConsumerId, relayPeers } from '../../src/targets/topic/relayRouting.js';

const member = (id: string, address?: string): ClusterMember => ({
  id,
  weight: 1,
  labels: {},
  ...(address === undefined ? {} : { address }),
});
const ack = (deliveryId: string): ClientMessage => ({ v: 1, type: 'ack', deliveryId });
const outcome = (deliveryId: string): ClientMessage => ({ v: 1, type: 'outcome', deliveryId, status: 'succeeded' });

describe('relay routing', () => {
  it('names a relayed consumer <consumerId>@<nodeId>, within the protocol limit and unique for long ids', () => {
    expect(relayConsumerId('billing-1', 'node-b')).toBe('billing-1@node-b');

    const node = 'n'.repeat(64);
    const long = (last: string) => `c${'x'.repeat(198)}${last}`;
    const [one, two] = [relayConsumerId(long('1'), node), relayConsumerId(long('2'), node)];
    expect(one).toHaveLength(200);
    expect(one.endsWith(`@${node}`)).toBe(true);
    expect(one).not.toBe(two);
    expect(ConsumerId.safeParse(one).success).toBe(true);
  });

  it('relays to every live member but itself that publishes an address', () => {
    const peers = relayPeers(
      [member('node-a', 'http://a:8080'), member('node-b', 'http://b:8080'), member('node-c')],
      'node-a',
    );
    expect([...peers]).toEqual([['node-b', 'http://b:8080']]);
    // Single-node mode: the only member is the node itself.
    expect(relayPeers([member('solo')], 'solo').size).toBe(0);
  });

  it('opens relays to joining peers, closes those to leaving peers, and reopens a moved one', () => {
    const current = new Map([
      ['node-b', 'http://b:1'],
      ['node-c', 'http://c:1'],
    ]);
    const next = new Map([
      ['node-c', 'http://c:2'],
      ['node-d', 'http://d:1'],
    ]);
    expect(peerChanges(current, next)).toEqual({
      close: ['node-b', 'node-c'],
      open: [
        ['node-c', 'http://c:2'],
        ['node-d', 'http://d:1'],
      ],
    });
    expect(peerChanges(next, next)).toEqual({ close: [], open: [] });
  });

  it('sends acks and outcomes back to the upstream that sent the delivery, until the outcome', () => {
    const routes = new DeliveryRoutes<string>();
    routes.fired('d1', 'node-b');
    routes.fired('d2', 'node-c');
    routes.fired('d1', 'node-b'); // the peer's redelivery after its ack timeout

    expect(routes.route(ack('d1'))).toBe('node-b');
    expect(routes.route(ack('d2'))).toBe('node-c');
    expect(routes.route(outcome('d1'))).toBe('node-b');
    // Settled: a late answer is no relayed fire's, so the local hub sees (and ignores) it.
    expect(routes.route(outcome('d1'))).toBeUndefined();
    expect(routes.route(ack('local-delivery'))).toBeUndefined();
    expect(routes.size).toBe(1);
  });

  it('forwards a cancel only from the upstream that sent the delivery, and forgets a closed upstream', () => {
    const routes = new DeliveryRoutes<string>();
    routes.fired('d1', 'node-b');
    routes.fired('d2', 'node-b');
    routes.fired('d3', 'node-c');

    expect(routes.cancelled('d1', 'node-c')).toBe(false);
    expect(routes.cancelled('d1', 'node-b')).toBe(true);
    expect(routes.route(outcome('d1'))).toBeUndefined();

    routes.drop('node-b');
    expect(routes.route(outcome('d2'))).toBeUndefined();
    expect(routes.route(outcome('d3'))).toBe('node-c');
    expect(routes.size).toBe(0);
  });
});
