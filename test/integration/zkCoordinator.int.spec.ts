import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { assignSlots, movedSlots, slotOf } from '../../domain/cluster/index.js';
import type { ConnectionState, Lease } from '../../src/coordination/coordinator.js';
import { type ZkClient, connectZk } from '../../src/coordination/zookeeper/zkClient.js';
import {
  ZooKeeperCoordinator,
  type ZooKeeperCoordinatorOptions,
} from '../../src/coordination/zookeeper/zookeeperCoordinator.js';
import { useZkEnsemble } from './support/zkEnsemble.js';

const zk = useZkEnsemble({ servers: 3 });
const SLOTS = 1024;
const coordinatorModule = fileURLToPath(
  new URL('../../src/coordination/zookeeper/zookeeperCoordinator.ts', import.meta.url),
);

describe('ZooKeeperCoordinator against a 3-server ensemble', () => {
  const nodes: ZooKeeperCoordinator[] = [];
  const clients: ZkClient[] = [];
  const children: ChildProcess[] = [];

  const node = (
    chroot: string,
    nodeId: string,
    options: Partial<ZooKeeperCoordinatorOptions> & { sessionTimeoutMs?: number } = {},
  ): ZooKeeperCoordinator => {
    const coordinator = new ZooKeeperCoordinator({
      nodeId,
      slotCount: SLOTS,
      zk: {
        connectionString: zk.ensemble.connectionString + chroot,
        sessionTimeoutMs: options.sessionTimeoutMs ?? 2_000,
      },
      ...options,
    });
    nodes.push(coordinator);
    return coordinator;
  };
  const started = async (chroot: string, ...ids: string[]): Promise<ZooKeeperCoordinator[]> => {
    const list = ids.map((id) => node(chroot, id));
    await Promise.all(list.map((n) => n.start()));
    return list;
  };
  const inspector = async (chroot: string): Promise<ZkClient> => {
    const client = await connectZk({ connectionString: zk.ensemble.connectionString + chroot });
    clients.push(client);
    return client;
  };

  afterEach(async () => {
    children.splice(0).forEach((child) => child.kill('SIGKILL'));
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  it('gives a single node every slot with positive epochs', async () => {
    const [solo] = await started('/kairos/coord-solo', 'solo');
    await waitFor(() => solo!.heldSlots().size === SLOTS);
    for (const lease of solo!.heldSlots().values()) expect(lease).toEqual({ node: 'solo', epoch: expect.any(Number) });
    expect(Math.min(...[...solo!.heldSlots().values()].map((l) => l.epoch))).toBeGreaterThan(0);
    expect(solo!.leaseFor('billing.nightly')).toEqual(solo!.heldSlots().get(slotOfTask(solo!, 'billing.nightly')));
    const root = await inspector('/kairos/coord-solo');
    expect(JSON.parse((await root.get('/config'))!.data.toString())).toEqual({ slotCount: SLOTS });
    expect(JSON.parse((await root.get('/members/solo'))!.data.toString())).toMatchObject({ id: 'solo', weight: 1 });
  });

  it('splits the slots among three nodes exactly as assignSlots says, each slot held once', async () => {
    const chroot = '/kairos/coord-three';
    const three = await started(chroot, 'node-1', 'node-2', 'node-3');
    await waitForAssignment(three);
    // Every lease znode names its holder and carries the holder's epoch as czxid. The inspector may read
    // from a follower that has not applied the latest creates yet, hence the polling.
    const root = await inspector(chroot);
    const owners = assignSlots(
      SLOTS,
      three.map((n) => ({ id: n.nodeId, weight: 1 })),
    );
    await waitFor(async () => {
      if ((await root.getChildren('/slots')).length !== SLOTS) return false;
      const leases = await Promise.all(owners.map((_, slot) => root.get(`/slots/${slot}`)));
      return leases.every((lease, slot) => {
        const holder = three.find((n) => n.nodeId === owners[slot])!;
        return (
          lease !== null &&
          lease.data.toString() === owners[slot] &&
          lease.stat.czxid === holder.heldSlots().get(slot)?.epoch
        );
      });
    });
  });

  it('hands a stopped node’s slots to the others with higher epochs', async () => {
    const [a, b, c] = await started('/kairos/coord-stop', 'node-1', 'node-2', 'node-3');
    await waitForAssignment([a!, b!, c!]);
    const before = b!.heldSlots();
    await b!.stop();
    await waitForAssignment([a!, c!]);
    for (const [slot, lease] of before) {
      const now = a!.heldSlots().get(slot) ?? c!.heldSlots().get(slot);
      expect(now!.epoch).toBeGreaterThan(lease.epoch);
    }
  });

  it('lets a joining node take exactly its share while the others keep the rest', async () => {
    const chroot = '/kairos/coord-join';
    const three = await started(chroot, 'node-1', 'node-2', 'node-3');
    await waitForAssignment(three);
    const before = new Map(three.map((n) => [n.nodeId, n.heldSlots()]));
    const fourth = node(chroot, 'node-4');
    await fourth.start();
    const four = [...three, fourth];
    await waitForAssignment(four);
    const moved = movedSlots(
      assignSlots(
        SLOTS,
        three.map((n) => ({ id: n.nodeId, weight: 1 })),
      ),
      assignSlots(
        SLOTS,
        four.map((n) => ({ id: n.nodeId, weight: 1 })),
      ),
    );
    expect(moved.sort((x, y) => x - y)).toEqual([...fourth.heldSlots().keys()].sort((x, y) => x - y));
    for (const n of three) {
      for (const [slot, lease] of before.get(n.nodeId)!) {
        if (moved.includes(slot)) expect(n.heldSlots().has(slot)).toBe(false);
        else expect(n.heldSlots().get(slot)).toEqual(lease);
      }
    }
  });

  it('elects one leader, each candidate watching only its predecessor; the next one leads when the leader goes', async () => {
    const chroot = '/kairos/coord-election';
    const three = await started(chroot, 'node-1', 'node-2', 'node-3');
    // The first to start leads; every node sees the same leader.
    await waitFor(() => three.every((n) => n.leader$.value !== null));
    const leader = three[0]!.leader$.value;
    expect(three.map((n) => n.leader$.value)).toEqual([leader, leader, leader]);
    const root = await inspector(chroot);
    // Candidates stand in the order of the sequence ZooKeeper appended to their names.
    const candidates = (await root.getChildren('/election')).sort(
      (x, y) => Number(x.slice(-10)) - Number(y.slice(-10)),
    );
    expect(candidates).toHaveLength(3);
    expect((await root.get(`/election/${candidates[0]}`))!.data.toString()).toBe(leader);
    expect((await root.get('/leader'))!.data.toString()).toBe(leader);
    // The leader's successor is the second candidate, whichever node that is.
    const successor = (await root.get(`/election/${candidates[1]}`))!.data.toString();
    const old = three.find((n) => n.nodeId === leader)!;
    await old.stop();
    const rest = three.filter((n) => n !== old);
    await waitFor(() => rest.every((n) => n.leader$.value === successor));
    expect(rest.find((n) => n.nodeId === successor)!.describe().leader).toBe(successor);
  });

  it('holds a pinned task through its own lease on a matching node only, and reports it unplaceable when none is live', async () => {
    const chroot = '/kairos/coord-pinned';
    const a = node(chroot, 'node-a', { member: { labels: { zone: 'a' } } });
    const b = node(chroot, 'node-b', { member: { labels: { zone: 'b' } } });
    await Promise.all([a.start(), b.start()]);
    await waitForAssignment([a, b]);
    for (const n of [a, b]) {
      n.place('only-b', { labels: { zone: 'b' } });
      n.place('only-c', { nodes: ['node-c'] });
    }
    await waitFor(() => b.leaseFor('only-b') !== null);
    expect(a.leaseFor('only-b')).toBeNull();
    const root = await inspector(chroot);
    const stat = await root.exists('/pinned/only-b');
    expect(b.leaseFor('only-b')).toEqual({ node: 'node-b', epoch: stat!.czxid });
    expect([a.leaseFor('only-c'), b.leaseFor('only-c')]).toEqual([null, null]);
    await waitFor(() => a.describe().unplaceable.length === 1);
    expect(a.describe().unplaceable).toEqual(['only-c']);
    // Unpinned again: back to its slot's owner, and the pinned lease is gone.
    for (const n of [a, b]) n.place('only-b', undefined);
    await waitFor(async () => (await root.exists('/pinned/only-b')) === null);
    const slotOwner = [a, b].find((n) => n.heldSlots().has(slotOfTask(n, 'only-b')))!;
    expect(slotOwner.leaseFor('only-b')).toEqual(slotOwner.heldSlots().get(slotOfTask(slotOwner, 'only-b')));
  });

  it('renews a lease to a higher epoch on request, and the leader removes leases of sessions that are no member', async () => {
    const chroot = '/kairos/coord-orphans';
    const [solo] = await started(chroot, 'solo');
    await waitFor(() => solo!.heldSlots().size === SLOTS && solo!.leader$.value === 'solo');
    const before = solo!.leaseFor('task-1')!;
    solo!.renewLease('task-1');
    await waitFor(() => (solo!.leaseFor('task-1')?.epoch ?? 0) > before.epoch);
    // A stray lease: created by a session that never registered as a member.
    const stray = await inspector(chroot);
    await stray.create('/pinned/stray-task', 'ghost', 'ephemeral');
    // Removed only when two scans in a row find it orphaned.
    expect(await solo!.removeOrphanedLeases()).toEqual([]);
    expect(await solo!.removeOrphanedLeases()).toEqual([{ lease: '/pinned/stray-task', session: stray.sessionId }]);
    expect(await stray.exists('/pinned/stray-task')).toBeNull();
    // The node's own leases are never orphans.
    expect(solo!.heldSlots().size).toBe(SLOTS);
  });

  it('follows the leader’s published, balanced assignment; a stopped member’s slots move by rendezvous at once', async () => {
    const chroot = '/kairos/coord-balance';
    const three = await started(chroot, 'node-1', 'node-2', 'node-3');
    await waitForAssignment(three);
    await waitFor(() => three.every((n) => n.leader$.value !== null && n.leader$.value === three[0]!.leader$.value));
    const leader = three.find((n) => n.nodeId === three[0]!.leader$.value)!;
    const followers = three.filter((n) => n !== leader);
    // 300 tasks hashed into slots: rendezvous alone leaves the members unevenly loaded.
    const load = new Uint32Array(SLOTS);
    for (let i = 1; i <= 300; i++) load[slotOf(`t${i}`, SLOTS)]!++;
    expect(await followers[0]!.publishAssignment(load)).toBeNull();
    const published = await leader.publishAssignment(load);
    expect(published).not.toBeNull();
    const { after } = published!;
    expect(published!.before).toEqual([]);
    expect(
      movedSlots(
        assignSlots(
          SLOTS,
          three.map((n) => ({ id: n.nodeId, weight: 1 })),
        ),
        after,
      ).length,
    ).toBeGreaterThan(0);
    const tasks = (id: string) => after.reduce((sum, owner, slot) => sum + (owner === id ? load[slot]! : 0), 0);
    for (const n of three) expect(Math.abs(tasks(n.nodeId) - 100)).toBeLessThanOrEqual(5);
    // Every node applies it: each slot held once, by its published owner.
    await waitFor(() => three.every((n) => [...n.heldSlots().keys()].every((slot) => after[slot] === n.nodeId)));
    await waitFor(() => three.reduce((sum, n) => sum + n.heldSlots().size, 0) === SLOTS);
    expect(followers[1]!.describe().slotOwners).toEqual(after);
    // Publishing the same balance again writes nothing.
    expect(await leader.publishAssignment(load)).toBeNull();
    // A follower leaves: its slots go to the rendezvous winner among the others before any new publication.
    const leaving = followers[1]!;
    await leaving.stop();
    const survivors = three.filter((n) => n !== leaving);
    const fallback = assignSlots(
      SLOTS,
      survivors.map((n) => ({ id: n.nodeId, weight: 1 })),
    );
    const expected = after.map((owner, slot) => (owner === leaving.nodeId ? fallback[slot] : owner));
    await waitFor(() => survivors.reduce((sum, n) => sum + n.heldSlots().size, 0) === SLOTS);
    for (const n of survivors) for (const slot of n.heldSlots().keys()) expect(expected[slot]).toBe(n.nodeId);
  });

  it('moves a crashed node’s slots to the survivors after its session times out', async () => {
    const chroot = '/kairos/coord-crash';
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', crashScript(coordinatorModule)],
      { env: { ...process.env, ZK: zk.ensemble.connectionString + chroot }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`crash node exited early (${code})`)));
    });
    const survivors = await started(chroot, 'node-1', 'node-2');
    const all = [...survivors.map((n) => ({ id: n.nodeId, weight: 1 })), { id: 'crashy', weight: 1 }];
    const owners = assignSlots(SLOTS, all);
    const crashSlots = owners.flatMap((owner, slot) => (owner === 'crashy' ? [slot] : []));
    const root = await inspector(chroot);
    const epochs = new Map<number, number>();
    await waitFor(async () => {
      for (const slot of crashSlots) {
        const lease = await root.get(`/slots/${slot}`);
        if (lease?.data.toString() !== 'crashy') return false;
        epochs.set(slot, lease.stat.czxid);
      }
      return true;
    });
    await waitForAssignment(survivors, all);
    child.kill('SIGKILL');
    const killedAt = Date.now();
    await waitForAssignment(survivors);
    expect(Date.now() - killedAt).toBeLessThan(2_000 + 5_000);
    for (const slot of crashSlots) {
      const lease = survivors.map((n) => n.heldSlots().get(slot)).find(Boolean);
      expect(lease!.epoch).toBeGreaterThan(epochs.get(slot)!);
    }
  });

  it('refuses a slot count that differs from the cluster’s, and a node id already live', async () => {
    const chroot = '/kairos/coord-config';
    await started(chroot, 'node-1');
    await expect(node(chroot, 'node-2', { slotCount: 512 }).start()).rejects.toThrow(
      /slotCount 512 does not match the cluster's slot count 1024/,
    );
    const later = node(chroot, 'node-3', { slotCount: undefined });
    await later.start();
    expect(later.slotCount).toBe(SLOTS);
    await expect(node(chroot, 'node-1').start()).rejects.toMatchObject({ code: 'already_exists' });
  });

  it('reports suspended with no leases while every server is down, then the same epochs again', async () => {
    const chroot = '/kairos/coord-suspend';
    const pair = ['node-1', 'node-2'].map((id) => node(chroot, id, { sessionTimeoutMs: 15_000 }));
    await Promise.all(pair.map((n) => n.start()));
    await waitForAssignment(pair);
    const before = pair.map((n) => n.heldSlots());
    const states = pair.map((n) => recordStates(n));
    try {
      await stopAll();
      await waitFor(() => pair.every((n) => n.connection === 'suspended'));
      for (const n of pair) {
        expect(n.leaseFor('billing.nightly')).toBeNull();
        expect(n.leaseFor('reports.daily')).toBeNull();
      }
    } finally {
      await startAll();
    }
    await waitFor(() => pair.every((n) => n.connection === 'connected'), 20_000);
    pair.forEach((n, i) => {
      expect(n.heldSlots()).toEqual(before[i]);
      expect(states[i]![0]).toBe('suspended');
      expect(states[i]!.at(-1)).toBe('connected');
      expect(states[i]).not.toContain('lost');
    });
    const owner = pair.find((n) => n.leaseFor('billing.nightly') !== null)!;
    expect(owner.leaseFor('billing.nightly')).toEqual(owner.heldSlots().get(slotOfTask(owner, 'billing.nightly')));
  });

  it('rejoins after its session is lost and takes its slots back with higher epochs', async () => {
    const chroot = '/kairos/coord-lost';
    const pair = await started(chroot, 'node-1', 'node-2');
    await waitForAssignment(pair);
    const before = pair.map((n) => n.heldSlots());
    const states = pair.map((n) => recordStates(n));
    try {
      await stopAll();
      await waitFor(() => pair.every((n) => n.connection === 'lost'), 10_000);
      for (const n of pair) expect(n.heldSlots().size).toBe(0);
    } finally {
      await startAll();
    }
    await waitForAssignment(pair, undefined, 30_000);
    pair.forEach((n, i) => {
      expect(states[i]).toEqual(['suspended', 'lost', 'connected']);
      for (const [slot, lease] of before[i]!) expect(n.heldSlots().get(slot)!.epoch).toBeGreaterThan(lease.epoch);
    });
  });
});

const slotOfTask = (n: ZooKeeperCoordinator, taskId: string): number => slotOf(taskId, n.slotCount);

const recordStates = (n: ZooKeeperCoordinator): ConnectionState[] => {
  const states: ConnectionState[] = [];
  n.events$.subscribe((e) => {
    if (e.type === 'connection') states.push(e.state);
  });
  return states;
};

/** Waits until every slot is held by exactly the node `assignSlots` names, and by no other. */
const waitForAssignment = async (
  nodes: readonly ZooKeeperCoordinator[],
  members = nodes.map((n) => ({ id: n.nodeId, weight: 1 })),
  timeoutMs = 15_000,
): Promise<void> => {
  const owners = assignSlots(SLOTS, members);
  await waitFor(() => {
    const held = nodes.map((n) => n.heldSlots());
    return owners.every((owner, slot) =>
      nodes.every(
        (n, i) => held[i]!.has(slot) === (n.nodeId === owner) && (held[i]!.get(slot)?.node ?? owner) === owner,
      ),
    );
  }, timeoutMs);
  const seen = new Map<number, Lease>();
  for (const n of nodes) for (const [slot, lease] of n.heldSlots()) seen.set(slot, lease);
  expect(seen.size).toBe(owners.filter((o) => nodes.some((n) => n.nodeId === o)).length);
};

const waitFor = async (condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

const crashScript = (modulePath: string): string => `
import { ZooKeeperCoordinator } from ${JSON.stringify(modulePath)};
const c = new ZooKeeperCoordinator({ nodeId: 'crashy', slotCount: ${SLOTS}, zk: { connectionString: process.env.ZK, sessionTimeoutMs: 2000 } });
await c.start();
process.stdout.write('ready\\n');
setInterval(() => undefined, 60000);
`;

const stopAll = () => Promise.all(zk.ensemble.servers.map((_, i) => zk.ensemble.stopServer(i)));
const startAll = () => Promise.all(zk.ensemble.servers.map((_, i) => zk.ensemble.startServer(i)));
