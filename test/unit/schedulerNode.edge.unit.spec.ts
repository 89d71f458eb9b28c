import { afterEach, describe, expect, it } from 'vitest';
import { nextWakeAt } from '../../domain/task/decide.js';
import { TaskEvent } from '../../domain/task/events.js';
import { foldTask } from '../../domain/task/state.js';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import { SchedulerNode } from '../../src/node/schedulerNode.js';
import { InMemoryEventStore } from '../../src/store/inMemoryEventStore.js';
import { FixedLeaseCoordinator, RecordingTarget, firedOf, flush, run, specOf } from './support/nodeHarness.js';

/**
 * Edge cases of the node runtime, found in review: restarts of delayAfter, edits of fired one-shots,
 * deletes with fires in flight, lease changes, throwing targets, manual triggers in one millisecond,
 * live state vs replay, and randomised runs with restarts and split brain.
 */

const T0 = Date.UTC(2026, 2, 1, 0, 0, 0);
const S = 1_000;
const user = { actor: 'user:test' };

type Booted = { node: SchedulerNode; target: RecordingTarget; coordinator: FixedLeaseCoordinator };

describe('SchedulerNode edge cases', () => {
  let clock: SimulatedClock;
  let store: InMemoryEventStore;
  /** setTimer calls with a zero delay: a node that keeps arming "now" is hot-looping. */
  let zeroDelayTimers = 0;
  const nodes: SchedulerNode[] = [];

  const setup = () => {
    clock = new SimulatedClock(T0);
    zeroDelayTimers = 0;
    const setTimer = clock.setTimer.bind(clock);
    clock.setTimer = (cb, delay) => {
      if (delay <= 0) zeroDelayTimers++;
      return setTimer(cb, delay);
    };
    store = new InMemoryEventStore({ now: () => clock.now() });
  };

  const boot = async (
    options: { nodeId?: string; epoch?: number; answer?: 'succeed' | 'fail' | 'none' } = {},
  ): Promise<Booted> => {
    const nodeId = options.nodeId ?? 'n1';
    const target = new RecordingTarget();
    let coordinator: FixedLeaseCoordinator | undefined;
    const node = new SchedulerNode({
      nodeId,
      store,
      clock,
      target,
      // Targets here answer on the simulated clock, which nobody advances during a stop.
      drainTimeoutMs: 0,
      coordinator: ({ maxEpoch }) => (coordinator = new FixedLeaseCoordinator(nodeId, options.epoch ?? maxEpoch + 1)),
    });
    target.listener = (o) => void node.reportOutcome(o);
    const answer = options.answer ?? 'succeed';
    if (answer !== 'none') {
      const deliver = target.deliver.bind(target);
      target.deliver = (fire) => {
        deliver(fire);
        queueMicrotask(() => target.answer(fire, answer === 'succeed' ? 'succeeded' : 'failed', clock.now(), 'boom'));
      };
    }
    await node.start();
    nodes.push(node);
    return { node, target, coordinator: coordinator as FixedLeaseCoordinator };
  };

  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop();
  });

  const streamOf = async (taskId: string) =>
    (await store.readStream(`kairos-task-${taskId}`)).map((r) => TaskEvent.parse({ type: r.type, data: r.data }));

  const expectLiveStateIsTheFold = async (node: SchedulerNode, taskId: string) => {
    const live = node.get(taskId)?.state;
    expect(live).toEqual(foldTask(taskId, await streamOf(taskId)));
  };

  describe('delayAfter through pause and resume', () => {
    it('a delayAfter task fires again after a pause that outlasted its delay', async () => {
      setup();
      const { node } = await boot();
      await node.createTask(specOf({ id: 'd', schedule: { delayAfter: '2s' } }), user);
      await run(clock, 5 * S);
      const before = firedOf(await store.readAll()).length;
      expect(before).toBeGreaterThan(0);
      await node.pauseTask('d', user);
      await run(clock, 10 * S);
      await node.resumeTask('d', user);
      await run(clock, 10 * S);
      expect(firedOf(await store.readAll()).length).toBeGreaterThan(before);
      expect(node.wakeAt('d')).toBeDefined();
    });
  });

  describe('one-shot edited after it fired', () => {
    it('editing a fired one-shot (jitter only) neither fires it again nor leaves the node failing every second', async () => {
      setup();
      const { node } = await boot();
      const at = new Date(T0 + S).toISOString();
      await node.createTask(specOf({ id: 'o', schedule: { at } }), user);
      await run(clock, 2 * S);
      expect(firedOf(await store.readAll())).toHaveLength(1);
      await node.updateTask(specOf({ id: 'o', schedule: { at, jitter: '1s' } }), user);
      let rejected = 0;
      const append = store.appendToStream.bind(store);
      store.appendToStream = (...args) =>
        append(...args).catch((e: unknown) => {
          rejected++;
          throw e;
        });
      await run(clock, 10 * S);
      expect(firedOf(await store.readAll())).toHaveLength(1);
      expect(rejected).toBe(0);
      expect(node.wakeAt('o')).toBeUndefined();
    });
  });

  describe('delete with a fire in flight', () => {
    it('a fire in flight when its task is deleted reaches a final outcome (it is not left in flight for ever)', async () => {
      setup();
      const { node, target } = await boot({ answer: 'none' });
      await node.createTask(
        specOf({
          id: 'x',
          schedule: { every: '1h' },
          timeout: '5s',
          retry: { maxAttempts: 3, backoff: { initial: '1s' } },
        }),
        user,
      );
      await run(clock, 3_600 * S + 100, 1_000);
      expect(target.delivered).toHaveLength(1);
      await node.deleteTask('x', user);
      await run(clock, 60 * S, 500);
      expect(node.get('x')?.state.inFlight).toEqual([]);
      // And nothing was fired for the deleted task.
      expect(firedOf(await store.readAll())).toHaveLength(1);
    });

    it('a deleted task never fires a tick or a retry, and a late success of its attempt is still recorded', async () => {
      setup();
      const { node, target } = await boot({ answer: 'none' });
      await node.createTask(specOf({ id: 'x', timeout: '30s', retry: { maxAttempts: 3 } }), user);
      await run(clock, S);
      expect(target.delivered).toHaveLength(1);
      await node.deleteTask('x', user);
      await run(clock, 5 * S);
      target.answer(target.delivered[0]!, 'succeeded', clock.now());
      await flush();
      await run(clock, 60 * S, 500);
      expect(firedOf(await store.readAll())).toHaveLength(1);
      expect(node.get('x')?.state.inFlight).toEqual([]);
      expect(node.get('x')?.state.lastOutcome).toMatchObject({ status: 'succeeded' });
      await expectLiveStateIsTheFold(node, 'x');
    });
  });

  describe('leases', () => {
    it('a lease change that does not move a task does not redeliver the fires this node already delivered', async () => {
      setup();
      const { node, target, coordinator } = await boot({ answer: 'none' });
      await node.createTask(specOf({ id: 'r', schedule: { every: '1h' }, timeout: '10m' }), user);
      await run(clock, 3_600 * S, 10_000);
      expect(target.delivered).toHaveLength(1);
      // Some other slot moved (a node joined, a rebalance): this node still holds 'r' at the same epoch.
      coordinator.events$.next({ type: 'leases-changed' });
      coordinator.events$.next({ type: 'leases-changed' });
      await flush();
      expect(target.delivered).toHaveLength(1);
    });

    it('a node without a lease arms nothing, and arms again when it gets one', async () => {
      setup();
      const { node, coordinator } = await boot();
      await node.createTask(specOf({ id: 'l' }), user);
      let held = false;
      coordinator.leaseFor = () => (held ? { node: 'n1', epoch: coordinator.epoch } : (null as never));
      coordinator.events$.next({ type: 'leases-changed' });
      expect(node.wakeAt('l')).toBeUndefined();
      await run(clock, 3 * S);
      expect(firedOf(await store.readAll())).toHaveLength(0);
      held = true;
      coordinator.events$.next({ type: 'leases-changed' });
      await run(clock, 2 * S);
      // fire-once: the ticks missed while unleased are coalesced into one catch-up fire, then back on time.
      const fired = firedOf(await store.readAll());
      expect(fired.length).toBeGreaterThanOrEqual(2);
      expect(new Set(fired.map((f) => f.scheduledAt)).size).toBe(fired.length);
    });
  });

  describe('live path, replay and restart agree', () => {
    it('the live state of every task equals the fold of its stream, and a restart replays to the same state', async () => {
      setup();
      const first = await boot();
      const specs = [
        specOf({ id: 'fast', overlap: 'allow' }),
        specOf({ id: 'slow', schedule: { every: '7s' }, misfire: { policy: 'fire-all' } }),
        specOf({ id: 'buf', schedule: { every: '2s' }, overlap: 'buffer-one' }),
        specOf({ id: 'cron', schedule: { cron: '*/3 * * * * *' } }),
        specOf({ id: 'delay', schedule: { delayAfter: '1500ms' } }),
        specOf({ id: 'retry', schedule: { every: '5s' }, retry: { maxAttempts: 3, backoff: { initial: '500ms' } } }),
      ];
      for (const s of specs) await first.node.createTask(s, user);
      // 'retry' fails every attempt.
      const deliver = first.target.deliver.bind(first.target);
      first.target.deliver = (fire) => {
        if (fire.taskId !== 'retry') return deliver(fire);
        first.target.delivered.push(fire);
        queueMicrotask(() => first.target.answer(fire, 'failed', clock.now(), 'nope'));
      };
      await run(clock, 12 * S);
      await first.node.pauseTask('slow', user);
      await run(clock, 3 * S);
      await first.node.resumeTask('slow', user);
      await first.node.updateTask(specOf({ id: 'fast', schedule: { every: '1500ms' }, overlap: 'allow' }), user);
      await run(clock, 8 * S);
      for (const s of specs) await expectLiveStateIsTheFold(first.node, s.id);
      await first.node.stop();
      // After the stop: a graceful stop records TaskReleased for the idle tasks.
      const before = new Map(specs.map((s) => [s.id, first.node.get(s.id)?.state]));
      // Restart at the same instant: the replayed state is the state the live node had.
      const second = await boot({ epoch: 1_000 });
      for (const s of specs) {
        const replayed = { ...second.node.get(s.id)?.state, owner: null };
        expect(replayed).toEqual({ ...before.get(s.id), owner: null });
      }
      await run(clock, 10 * S);
      const fired = firedOf(await store.readAll());
      const keys = fired.map((f) => `${f.taskId}@${f.scheduledAt}#${f.attempt}`);
      expect(new Set(keys).size).toBe(keys.length);
      for (const s of specs) await expectLiveStateIsTheFold(second.node, s.id);
    });

    it('the node never hot-loops (no burst of zero-delay timers) across fires, retries, timeouts and pauses', async () => {
      setup();
      const { node } = await boot({ answer: 'none' });
      await node.createTask(
        specOf({ id: 'a', timeout: '1500ms', retry: { maxAttempts: 2, backoff: { initial: '300ms' } } }),
        user,
      );
      await node.createTask(
        specOf({ id: 'b', schedule: { every: '1s', jitter: '700ms' }, overlap: 'buffer-one', timeout: '2500ms' }),
        user,
      );
      await node.createTask(specOf({ id: 'c', schedule: { delayAfter: '1s' }, timeout: '800ms' }), user);
      await run(clock, 10 * S, 50);
      await node.pauseTask('a', user);
      await run(clock, 5 * S, 50);
      await node.resumeTask('a', user);
      await run(clock, 5 * S, 50);
      // A handful of "due now" timers happen legitimately (the node is late by up to one step); a loop would make thousands.
      expect(zeroDelayTimers).toBeLessThan(50);
      for (const id of ['a', 'b', 'c']) {
        const state = node.get(id)?.state;
        const wake = state && nextWakeAt(state);
        expect(wake === null || wake === undefined || wake > clock.now() - 100).toBe(true);
      }
    });

    it('a fire appended by this node is applied once although both the append and the log subscription bring it', async () => {
      setup();
      const { node } = await boot();
      await node.createTask(specOf({ id: 'once', overlap: 'allow' }), user);
      await run(clock, 5 * S);
      const record = node.get('once');
      const stream = await store.readStream('kairos-task-once');
      expect(record?.revision).toBe(stream.at(-1)?.revision);
      expect(record?.state.runs).toBe(5);
      await expectLiveStateIsTheFold(node, 'once');
    });
  });

  describe('changes from another process', () => {
    it('a task created by another process through the log is fired by the lease holder, once per tick', async () => {
      setup();
      const { node } = await boot();
      const spec = specOf({ id: 'ext' });
      await store.appendToStream('kairos-task-ext', [
        {
          id: crypto.randomUUID(),
          type: 'TaskCreated',
          data: { v: 1, taskId: 'ext', spec, at: new Date(clock.now()).toISOString() },
          metadata: { actor: 'user:other' },
        },
      ]);
      await flush();
      await run(clock, 3 * S);
      expect(firedOf(await store.readAll()).map((f) => f.scheduledAt)).toEqual(
        [1, 2, 3].map((s) => new Date(T0 + s * S).toISOString()),
      );
      expect(node.get('ext')?.state.owner).toMatchObject({ node: 'n1' });
    });

    it('a pause appended by another process while a fire is in flight stops the ticks; the outcome is still recorded', async () => {
      setup();
      const { node, target } = await boot({ answer: 'none' });
      await node.createTask(specOf({ id: 'p', timeout: '1m' }), user);
      await run(clock, S);
      expect(target.delivered).toHaveLength(1);
      await store.appendToStream('kairos-task-p', [
        {
          id: crypto.randomUUID(),
          type: 'TaskPaused',
          data: { v: 1, taskId: 'p', at: new Date(clock.now()).toISOString() },
          metadata: { actor: 'user:other' },
        },
      ]);
      await flush();
      target.answer(target.delivered[0]!, 'succeeded', clock.now());
      await flush();
      await run(clock, 5 * S);
      expect(firedOf(await store.readAll())).toHaveLength(1);
      expect(node.get('p')?.state).toMatchObject({
        status: 'paused',
        inFlight: [],
        lastOutcome: { status: 'succeeded' },
      });
      await expectLiveStateIsTheFold(node, 'p');
    });
  });

  describe('effects after a durable append', () => {
    it('a target that throws on one delivery does not keep the other fires of the same decision from being delivered', async () => {
      setup();
      const { node, target } = await boot();
      await node.createTask(specOf({ id: 'all', misfire: { policy: 'fire-all' }, overlap: 'allow' }), user);
      const deliver = target.deliver.bind(target);
      let calls = 0;
      target.deliver = (fire) => {
        deliver(fire);
        if (calls++ === 0) throw new Error('target hiccup');
      };
      clock.increment(3 * S); // three ticks fall due in one decision
      await flush();
      await run(clock, 500);
      const fired = firedOf(await store.readAll());
      expect(fired).toHaveLength(3);
      expect(new Set(target.delivered.map((d) => d.fireId))).toEqual(new Set(fired.map((f) => f.fireId)));
    });

    it('two manual triggers in the same millisecond both succeed (the second is not a conflict error)', async () => {
      setup();
      const { node } = await boot();
      await node.createTask(specOf({ id: 'm', schedule: { every: '1h' } }), user);
      const first = await node.triggerTask('m', user);
      await flush(); // the first fire has succeeded; the clock has not moved
      await expect(node.triggerTask('m', user)).resolves.toBeTypeOf('string');
      expect(first).toBeTypeOf('string');
    });
  });

  describe('timeouts and late outcomes', () => {
    it('an outcome arriving after the timeout is ignored; the retry fires once and its outcome counts', async () => {
      setup();
      const { node, target } = await boot({ answer: 'none' });
      await node.createTask(
        specOf({
          id: 't',
          schedule: { every: '1h' },
          timeout: '2s',
          retry: { maxAttempts: 2, backoff: { initial: '1s', jitter: 0 } },
        }),
        user,
      );
      await run(clock, 3_600 * S, 10_000);
      await run(clock, 2_500, 100); // the first attempt times out
      target.answer(target.delivered[0]!, 'succeeded', clock.now());
      await flush();
      await run(clock, 2 * S, 100); // the retry fires
      expect(target.delivered.map((d) => d.attempt)).toEqual([1, 2]);
      expect(target.cancelled).toEqual([`${target.delivered[0]!.fireId}#1`]);
      target.answer(target.delivered[1]!, 'succeeded', clock.now());
      await flush();
      const log = await store.readAll();
      expect(log.filter((e) => e.type === 'TaskSucceeded').map((e) => (e.data as { attempt: number }).attempt)).toEqual(
        [2],
      );
      expect(node.get('t')?.state.inFlight).toEqual([]);
    });
  });

  describe('randomised runs (deterministic seeds)', () => {
    const prng = (seed: number) => () => {
      seed = (seed * 1_103_515_245 + 12_345) & 0x7fff_ffff;
      return seed / 0x8000_0000;
    };
    const overlaps = ['skip', 'buffer-one', 'buffer-all', 'allow', 'cancel-previous'] as const;
    const policies = ['fire-once', 'fire-all', 'skip'] as const;

    /** A node whose target answers each delivery after a random delay (success, failure, or never). */
    const bootRandom = async (rnd: () => number, nodeId: string, epoch: number) => {
      const target = new RecordingTarget();
      const node = new SchedulerNode({
        nodeId,
        store,
        clock,
        target,
        drainTimeoutMs: 0,
        coordinator: () => new FixedLeaseCoordinator(nodeId, epoch),
      });
      target.listener = (o) => void node.reportOutcome(o);
      const deliver = target.deliver.bind(target);
      target.deliver = (fire) => {
        deliver(fire);
        const r = rnd();
        if (r < 0.8)
          clock.setTimer(
            () => target.answer(fire, r < 0.55 ? 'succeeded' : 'failed', clock.now(), 'x'),
            1 + Math.floor(rnd() * 2_500),
          );
      };
      await node.start();
      nodes.push(node);
      return node;
    };

    const checkLog = async (ids: string[], live: SchedulerNode[]) => {
      const keys = firedOf(await store.readAll())
        .filter((f) => f.trigger !== 'manual')
        .map((f) => `${f.taskId}@${f.scheduledAt}#${f.attempt}`);
      expect(keys.length - new Set(keys).size).toBe(0);
      for (const id of ids) {
        const events = await streamOf(id);
        const epochs = events.flatMap((e) =>
          e.type === 'TaskAssigned' || e.type === 'TaskReassigned' ? [e.data.epoch] : [],
        );
        expect(epochs).toEqual([...epochs].sort((a, b) => a - b));
        for (const n of live) expect(n.get(id)?.state).toEqual(foldTask(id, events));
      }
    };

    it.each([1, 2, 3])(
      'restarts and hot changes never fire a tick attempt twice, and state always equals the fold (seed %i)',
      async (seed) => {
        setup();
        const rnd = prng(seed);
        let epoch = 1;
        let node = await bootRandom(rnd, 'n1', epoch++);
        const ids = ['a', 'b', 'c', 'd'];
        const schedules = [{ every: '1s' }, { every: '2s', jitter: '1500ms' }, { cron: '*/3 * * * * *' }];
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
        for (const id of ids) {
          await node.createTask(
            specOf({
              id,
              schedule: pick(schedules),
              overlap: pick(overlaps),
              misfire: { policy: pick(policies), maxCatchUp: 3 },
              timeout: '2s',
              retry: { maxAttempts: 2, backoff: { initial: '500ms' } },
            }),
            user,
          );
        }
        for (let i = 0; i < 200; i++) {
          const r = rnd();
          const id = pick(ids);
          try {
            if (r < 0.03) {
              await node.stop();
              clock.increment(Math.floor(rnd() * 8_000));
              node = await bootRandom(rnd, `n${epoch}`, epoch++);
            } else if (r < 0.06) await node.pauseTask(id, user);
            else if (r < 0.09) await node.resumeTask(id, user);
            else if (r < 0.1) await node.deleteTask(id, user);
            else if (r < 0.12) await node.restoreTask(id, user);
            else if (r < 0.14) await node.triggerTask(id, user);
            else if (r < 0.16) await node.updateTask(specOf({ id, schedule: pick(schedules), timeout: '2s' }), user);
          } catch (err) {
            expect(String(err)).toMatch(/deleted/);
          }
          clock.increment(Math.floor(rnd() * 400));
          await flush();
        }
        await flush(10);
        await checkLog(ids, [node]);
      },
    );

    it.each([1, 2, 3])(
      'split brain (two nodes both holding the lease) never fires a tick attempt twice; after the newer epoch is recorded only it fires (seed %i)',
      async (seed) => {
        setup();
        const rnd = prng(seed);
        const old = await bootRandom(rnd, 'old', 3);
        const ids = ['x', 'y', 'z'];
        for (const id of ids) {
          await old.createTask(
            specOf({
              id,
              schedule: { every: ['1s', '700ms', '2s'][Math.floor(rnd() * 3)] as string },
              overlap: overlaps[Math.floor(rnd() * 5)],
              misfire: { policy: policies[Math.floor(rnd() * 3)] },
              timeout: '1500ms',
              retry: { maxAttempts: 3, backoff: { initial: '300ms' } },
            }),
            user,
          );
        }
        for (let i = 0; i < 30; i++) {
          clock.increment(Math.floor(rnd() * 300));
          await flush();
        }
        const young = await bootRandom(rnd, 'young', 7);
        for (let i = 0; i < 150; i++) {
          clock.increment(Math.floor(rnd() * 300));
          await flush(Math.floor(rnd() * 4));
        }
        await flush(10);
        await checkLog(ids, [old, young]);
        for (const id of ids) {
          const events = await streamOf(id);
          const claimed = events.findIndex((e) => e.type === 'TaskReassigned');
          expect(claimed).toBeGreaterThan(-1);
          expect(events.slice(claimed).every((e) => e.type !== 'TaskFired' || e.data.epoch === 7)).toBe(true);
        }
      },
    );
  });
});
