import { throwError } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, KairosError } from '../../domain/errors/index.js';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import { firedOf, flush, run, specOf, startNode } from './support/nodeHarness.js';

const T0 = Date.UTC(2026, 2, 1, 0, 0, 0);
const actor = { actor: 'user:test' };

describe('SchedulerNode on a simulated clock', () => {
  let clock: SimulatedClock;
  let store: InMemoryEventStore;
  const nodes: Array<{ stop(): Promise<void> }> = [];
  const boot = async (...args: Parameters<typeof startNode>) => {
    const started = await startNode(...args);
    nodes.push(started.node);
    return started;
  };

  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop();
  });

  const setup = () => {
    clock = new SimulatedClock(T0);
    store = new InMemoryEventStore({ now: () => clock.now() });
  };

  it('fires a task on every tick, delivers after the append, and records outcomes', async () => {
    setup();
    const { node, target } = await boot({ store, clock, autoSucceed: true });
    await node.createTask(specOf({ id: 'a' }), actor);
    await run(clock, 5_000);
    const log = await store.readAll();
    const fired = firedOf(log);
    expect(fired.map((f) => f.scheduledAt)).toEqual([1, 2, 3, 4, 5].map((s) => new Date(T0 + s * 1000).toISOString()));
    expect(target.delivered.map((d) => d.fireId)).toEqual(fired.map((f) => f.fireId));
    expect(log.filter((e) => e.type === 'TaskSucceeded')).toHaveLength(5);
    expect(log.map((e) => e.type).slice(0, 3)).toEqual(['TaskCreated', 'TaskAssigned', 'TaskFired']);
    expect(log[1]?.metadata).toMatchObject({ actor: 'node:n1' });
    expect(log[0]?.metadata).toMatchObject({ actor: 'user:test' });
  });

  it('appends the fires of many tasks due at the same instant together', async () => {
    setup();
    const { node } = await boot({ store, clock, autoSucceed: true });
    for (let i = 0; i < 50; i++) await node.createTask(specOf({ id: `t${i}` }), actor);
    await run(clock, 1_000);
    expect(firedOf(await store.readAll())).toHaveLength(50);
  });

  it('after a restart, replays the log, catches up missed ticks by policy, and never fires a tick twice', async () => {
    setup();
    const first = await boot({ store, clock, autoSucceed: true });
    await first.node.createTask(specOf({ id: 'a', misfire: { policy: 'fire-all' }, overlap: 'allow' }), actor);
    await first.node.createTask(specOf({ id: 'b', misfire: { policy: 'fire-once' } }), actor);
    await run(clock, 3_000);
    await first.node.stop();
    clock.increment(10_000); // the node is down for 10 s
    const second = await boot({ store, clock, autoSucceed: true });
    await run(clock, 2_000);
    const fired = firedOf(await store.readAll());
    const a = fired.filter((f) => f.taskId === 'a');
    const keys = fired.map((f) => `${f.taskId}@${f.scheduledAt}`);
    expect(new Set(keys).size).toBe(keys.length);
    // fire-all: every tick from 1 s to 15 s, the missed ones as catch-up by the second node's higher epoch.
    expect(a.map((f) => (Date.parse(f.scheduledAt) - T0) / 1000)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(a.filter((f) => f.trigger === 'catch-up').length).toBeGreaterThanOrEqual(9);
    expect(new Set(a.map((f) => f.epoch)).size).toBe(2);
    // fire-once: the ticks from 4 s to 12 s coalesce into the fire of the 13 s tick.
    const b = fired.filter((f) => f.taskId === 'b');
    expect(b.map((f) => (Date.parse(f.scheduledAt) - T0) / 1000)).toEqual([1, 2, 3, 13, 14, 15]);
    const log = await store.readAll();
    expect(
      log.find((e) => e.type === 'TaskMisfired' && (e.data as { taskId: string }).taskId === 'b')?.data,
    ).toMatchObject({ action: 'coalesced', count: 9 });
    expect(log.some((e) => e.type === 'TaskReassigned')).toBe(true);
    expect(second.node.get('a')?.state.owner).toEqual({ node: 'n1', epoch: 2 });
  });

  it('replays a log of many pages completely on start', async () => {
    setup();
    const first = await boot({ store, clock, autoSucceed: true });
    for (let i = 0; i < 40; i++) await first.node.createTask(specOf({ id: `t${i}`, schedule: { every: '1s' } }), actor);
    await run(clock, 3_000);
    await first.node.stop();
    const head = await store.headPosition();
    const second = await boot({ store, clock, recoveryPageSize: 7 });
    expect(second.node.taskCount).toBe(40);
    for (let i = 0; i < 40; i++) expect(second.node.get(`t${i}`)?.state).toEqual(first.node.get(`t${i}`)?.state);
    expect([...second.node.tasks()].reduce((n, r) => n + Number(r.revision) + 1, 0)).toBe(Number(head));
  });

  it('redelivers a fire that had no outcome when the node stopped', async () => {
    setup();
    const first = await boot({ store, clock });
    await first.node.createTask(specOf({ id: 'a', timeout: '1m' }), actor);
    await run(clock, 1_000);
    expect(first.target.delivered).toHaveLength(1);
    await first.node.stop();
    const second = await boot({ store, clock });
    await flush();
    expect(second.target.delivered.map((d) => d.fireId)).toEqual([first.target.delivered[0]?.fireId]);
  });

  it('two nodes that both believe they hold a task (split brain) never fire a tick twice: the older epoch is fenced', async () => {
    setup();
    const old = await boot({ store, clock, nodeId: 'old', epoch: 1, autoSucceed: true });
    await old.node.createTask(specOf({ id: 'a', overlap: 'allow' }), actor);
    await run(clock, 2_000);
    const young = await boot({ store, clock, nodeId: 'young', epoch: 5, autoSucceed: true });
    // Both race for every tick; the stale node wins each race until the young one records its epoch.
    await run(clock, 2_000);
    await young.node.triggerTask('a', actor);
    await run(clock, 3_000);
    const fired = firedOf(await store.readAll());
    const ticks = fired.filter((f) => f.trigger !== 'manual').map((f) => f.scheduledAt);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(ticks).toHaveLength(7);
    // Once the young node has recorded its epoch, the old one can no longer fire.
    const firstYoung = fired.findIndex((f) => f.node === 'young');
    expect(firstYoung).toBeGreaterThan(-1);
    expect(fired.slice(firstYoung).every((f) => f.node === 'young')).toBe(true);
  });

  it('sees definition changes appended by another process through the log', async () => {
    setup();
    const { node } = await boot({ store, clock, autoSucceed: true });
    await node.createTask(specOf({ id: 'a', schedule: { every: '10s' } }), actor);
    const paused = { type: 'TaskPaused', data: { v: 1, taskId: 'a', at: new Date(clock.now()).toISOString() } };
    await store.appendToStream('kairos-task-a', [
      { id: crypto.randomUUID(), ...paused, metadata: { actor: 'user:other' } },
    ]);
    await flush();
    expect(node.get('a')?.state.status).toBe('paused');
    await run(clock, 20_000, 1_000);
    expect(firedOf(await store.readAll())).toHaveLength(0);
  });

  it('renews a failed log subscription from where it stopped, missing nothing', async () => {
    setup();
    let failures = 1;
    const subscribe = store.subscribeToAll.bind(store);
    store.subscribeToAll = (options) => {
      if (failures-- > 0) return throwError(() => new Error('connection to the log lost'));
      return subscribe(options);
    };
    const { node } = await boot({ store, clock, autoSucceed: true });
    await store.appendToStream('kairos-task-b', [
      {
        id: crypto.randomUUID(),
        type: 'TaskCreated',
        data: {
          v: 1,
          taskId: 'b',
          spec: specOf({ id: 'b', schedule: { every: '1h' } }),
          at: new Date(clock.now()).toISOString(),
        },
        metadata: { actor: 'user:other' },
      },
    ]);
    await flush();
    expect(node.get('b')).toBeUndefined();
    await run(clock, 1_000);
    expect(node.get('b')?.state.status).toBe('active');
  });

  it('reports the store as a problem while appends fail, and recovers when they succeed', async () => {
    setup();
    const { node } = await boot({ store, clock, autoSucceed: true });
    await node.createTask(specOf({ id: 'a' }), actor);
    const append = store.appendToStream.bind(store);
    store.appendToStream = () => Promise.reject(new KairosError(ErrorCode.unavailable, 'disk full'));
    await run(clock, 1_000);
    expect(node.storeProblem).toBe('disk full');
    expect(firedOf(await store.readAll())).toHaveLength(0);
    store.appendToStream = append;
    await run(clock, 3_000);
    expect(node.storeProblem).toBeNull();
    // Nothing was lost while the store was down: the missed tick is handled by the misfire policy.
    expect(firedOf(await store.readAll()).length).toBeGreaterThan(0);
  });

  it('failures drive retries with backoff; the final failure is recorded once', async () => {
    setup();
    const { node, target } = await boot({ store, clock });
    target.deliver = (fire) => {
      target.delivered.push(fire);
      queueMicrotask(() => target.answer(fire, 'failed', clock.now(), `boom ${fire.attempt}`));
    };
    await node.createTask(
      specOf({ id: 'a', schedule: { every: '1h' }, retry: { maxAttempts: 3, backoff: { initial: '1s', jitter: 0 } } }),
      actor,
    );
    await run(clock, 3_600_000 + 5_000, 500);
    const log = await store.readAll();
    const failed = log
      .filter((e) => e.type === 'TaskFailed')
      .map((e) => e.data as { attempt: number; willRetryAt?: string; message: string });
    expect(failed.map((f) => [f.attempt, f.message, f.willRetryAt !== undefined])).toEqual([
      [1, 'boom 1', true],
      [2, 'boom 2', true],
      [3, 'boom 3', false],
    ]);
    expect(firedOf(log).map((f) => f.trigger)).toEqual(['schedule', 'retry', 'retry']);
    expect(node.get('a')?.state.failureStreak).toBe(1);
  });
});
