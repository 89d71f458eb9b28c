import { firstValueFrom, filter, take, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectionState } from '../../src/coordination/coordinator.js';
import { CreateMode, type ZkClient, connectZk } from '../../src/coordination/zookeeper/zkClient.js';
import { isZkError } from '../../src/coordination/zookeeper/zkErrors.js';
import { useZkEnsemble } from './support/zkEnsemble.js';

const zk = useZkEnsemble({ servers: 3 });

describe('ZkClient against a 3-server ensemble', () => {
  const clients: ZkClient[] = [];
  const connect = async (chroot = '', options: { auth?: string; sessionTimeoutMs?: number } = {}) => {
    const client = await connectZk({ connectionString: zk.ensemble.connectionString + chroot, ...options });
    clients.push(client);
    return client;
  };
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  it('creates the chroot and keeps every path inside it', async () => {
    const client = await connect('/kairos/chroot-test');
    expect(await client.create('/a', 'hello')).toBe('/a');
    const root = await connect();
    expect((await root.get('/kairos/chroot-test/a'))?.data.toString()).toBe('hello');
  });

  it('creates, reads, updates and deletes nodes', async () => {
    const client = await connect('/kairos/crud');
    await client.create('/n', 'v1');
    const first = await client.get('/n');
    expect(first?.data.toString()).toBe('v1');
    const stat = await client.set('/n', 'v2', first?.stat.version);
    expect(stat.version).toBe(1);
    await expect(client.set('/n', 'v3', 0)).rejects.toSatisfy((e) => isZkError(e, 'BADVERSION'));
    await expect(client.create('/n')).rejects.toSatisfy((e) => isZkError(e, 'NODEEXISTS'));
    await client.mkdirp('/deep/er/path');
    expect(await client.getChildren('/deep/er')).toEqual(['path']);
    const seq = await client.create('/seq-', '', CreateMode.persistentSequential);
    expect(seq).toMatch(/^\/seq-\d{10}$/);
    await client.delete('/n');
    expect(await client.exists('/n')).toBeNull();
    expect(await client.get('/n')).toBeNull();
    await expect(client.delete('/n')).rejects.toMatchObject({ code: 'not_found', zkCode: 'NONODE' });
  });

  it('removes ephemeral nodes when their session closes', async () => {
    const owner = await connect('/kairos/ephemeral');
    const observer = await connect('/kairos/ephemeral');
    await owner.create('/member', 'x', CreateMode.ephemeral);
    expect((await observer.exists('/member'))?.ephemeralOwner).toBe(owner.sessionId);
    const sessionTimeoutMs = owner.sessionTimeoutMs;
    await owner.close();
    // The observer may be connected to a follower that applies the session's close a moment later (ZooKeeper
    // reads are sequentially consistent, not linearizable): wait for the delete, well inside the session timeout.
    const closedAt = performance.now();
    await observer.gone('/member');
    expect(performance.now() - closedAt).toBeLessThan(sessionTimeoutMs / 2);
    expect(await observer.exists('/member')).toBeNull();
  });

  it('streams children on every add and remove, re-arming its watch', async () => {
    const client = await connect('/kairos/watch');
    await client.mkdirp('/members');
    const seen = firstValueFrom(client.children$('/members').pipe(take(4), toArray()));
    await settle();
    await client.create('/members/a', '', CreateMode.ephemeral);
    await settle();
    await client.create('/members/b');
    await settle();
    await client.delete('/members/a');
    expect(await seen).toEqual([[], ['a'], ['a', 'b'], ['b']]);
  });

  it('emits [] for a missing node and the children once it is created', async () => {
    const client = await connect('/kairos/watch-missing');
    const seen = firstValueFrom(client.children$('/later').pipe(take(2), toArray()));
    await settle();
    await client.create('/later');
    await client.create('/later/x');
    // The empty list of the newly created node equals the previous value and is not repeated.
    expect(await seen).toEqual([[], ['x']]);
  });

  it('gone() resolves at once for a missing node, and after a change only when the node is deleted', async () => {
    const client = await connect('/kairos/gone');
    await client.gone('/never');
    await client.create('/n', 'v1');
    let gone = false;
    const waiting = client.gone('/n').then(() => (gone = true));
    await client.set('/n', 'v2');
    await settle();
    expect(gone).toBe(false);
    const other = await connect('/kairos/gone');
    await other.delete('/n');
    await waiting;
    expect(gone).toBe(true);
  });

  it('keeps the subtree from other identities when digest auth is on', async () => {
    const owner = await connect('/kairos/secure', { auth: 'kairos:s3cret' });
    await owner.create('/data', 'private');
    const outsider = await connect();
    const intruder = await connect('', { auth: 'kairos:wrong' });
    for (const other of [outsider, intruder]) {
      await expect(other.getChildren('/kairos/secure')).rejects.toSatisfy((e) => isZkError(e, 'NOAUTH'));
      await expect(other.get('/kairos/secure/data')).rejects.toSatisfy((e) => isZkError(e, 'NOAUTH'));
      await expect(other.set('/kairos/secure/data', 'x')).rejects.toSatisfy((e) => isZkError(e, 'NOAUTH'));
      await expect(other.create('/kairos/secure/new')).rejects.toSatisfy((e) => isZkError(e, 'NOAUTH'));
      await expect(other.delete('/kairos/secure/data')).rejects.toSatisfy((e) => isZkError(e, 'NOAUTH'));
    }
    const again = await connect('/kairos/secure', { auth: 'kairos:s3cret' });
    expect((await again.get('/data'))?.data.toString()).toBe('private');
  });

  it('goes suspended when every server stops and connected with the same session when they return', async () => {
    // Long enough for three JVMs to restart and form a quorum on a loaded CI machine (a 10 s session once
    // expired first, and the client went lost instead).
    const client = await connect('/kairos/state', { sessionTimeoutMs: 30_000 });
    const session = client.sessionId;
    const states: ConnectionState[] = [];
    client.state$.subscribe((s) => states.push(s));
    await stopAll();
    await firstValueFrom(client.state$.pipe(filter((s) => s === 'suspended')));
    await startAll();
    await firstValueFrom(client.state$.pipe(filter((s) => s === 'connected')));
    expect(client.sessionId).toBe(session);
    expect(states).toEqual(['connected', 'suspended', 'connected']);
    await client.create('/after', '', CreateMode.ephemeral);
  });

  it('goes lost when the servers stay away past the session timeout', async () => {
    const client = await connect('/kairos/lost', { sessionTimeoutMs: 2_000 });
    const states: ConnectionState[] = [];
    const done = new Promise<void>((resolve) =>
      client.state$.subscribe({ next: (s) => states.push(s), complete: resolve }),
    );
    await stopAll();
    try {
      await done;
      expect(states).toEqual(['connected', 'suspended', 'lost']);
      await expect(client.get('/x')).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      await startAll();
    }
  });

  it('fails to connect with unavailable when no server answers', async () => {
    await expect(
      connectZk({ connectionString: '127.0.0.1:1', sessionTimeoutMs: 1_000, connectTimeoutMs: 1_000 }),
    ).rejects.toMatchObject({ code: 'unavailable' });
  });
});

const stopAll = () => Promise.all(zk.ensemble.servers.map((_, i) => zk.ensemble.stopServer(i)));
const startAll = () => Promise.all(zk.ensemble.servers.map((_, i) => zk.ensemble.startServer(i)));
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));
