import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import { TimerQueue } from '../../src/node/timerQueue.js';

describe('TimerQueue', () => {
  const setup = () => {
    const clock = new SimulatedClock(1_000);
    const batches: string[][] = [];
    const queue = new TimerQueue(clock, (keys) => batches.push(keys));
    return { clock, batches, queue };
  };

  it('hands over keys due at the same time in one batch, in time order across batches', () => {
    const { clock, batches, queue } = setup();
    queue.schedule('b', 3_000);
    queue.schedule('a', 2_000);
    queue.schedule('c', 2_000);
    clock.increment(5_000);
    expect(batches).toEqual([['a', 'c'], ['b']]);
  });

  it('with a lead, hands the keys of the instants it takes over that long before them; the rest when due', () => {
    const clock = new SimulatedClock(1_000);
    const due: string[][] = [];
    const soon: Array<Array<[string, number]>> = [];
    // Takes instants of two keys or more, and any key of the instant 2,000 (held already, say).
    const queue = new TimerQueue(clock, (keys) => due.push(keys), {
      lead: 300,
      takes: (at, count) => count >= 2 || at === 2_000,
      onSoon: (s) => soon.push(s),
      active: () => true,
    });
    queue.schedule('a', 2_000);
    queue.schedule('b', 2_000);
    queue.schedule('c', 2_500);
    queue.schedule('now', 1_000);
    clock.increment(0);
    expect(due).toEqual([['now']]);
    clock.increment(699);
    expect(soon).toEqual([]);
    clock.increment(1);
    expect(soon).toHaveLength(1);
    expect([...(soon[0] ?? [])].sort()).toEqual([
      ['a', 2_000],
      ['b', 2_000],
    ]);
    // Handed over, they have left the queue: rescheduling one puts it back, and it is handed over again.
    expect(queue.dueAt('a')).toBeUndefined();
    queue.schedule('a', 2_000);
    clock.increment(0);
    expect(soon.at(-1)).toEqual([['a', 2_000]]);
    // c alone is not taken: it stays scheduled, and is due at its time.
    clock.increment(799);
    expect(queue.dueAt('c')).toBe(2_500);
    expect(due).toEqual([['now']]);
    clock.increment(1);
    expect(due).toEqual([['now'], ['c']]);
    expect(soon).toHaveLength(2);
  });

  it('with a lead not active, hands every key over when due', () => {
    const clock = new SimulatedClock(1_000);
    const due: string[][] = [];
    const soon: unknown[] = [];
    let active = false;
    const queue = new TimerQueue(clock, (keys) => due.push(keys), {
      lead: 300,
      takes: () => true,
      onSoon: (s) => soon.push(s),
      active: () => active,
    });
    queue.schedule('a', 2_000);
    queue.schedule('b', 3_000);
    clock.increment(1_000);
    expect(due).toEqual([['a']]);
    expect(soon).toEqual([]);
    active = true;
    queue.schedule('c', 2_900);
    clock.increment(700);
    expect(soon).toEqual([[['c', 2_900]], [['b', 3_000]]]);
  });

  it('rescheduling replaces the earlier wake-up; null cancels', () => {
    const { clock, batches, queue } = setup();
    queue.schedule('a', 2_000);
    queue.schedule('a', 4_000);
    queue.schedule('b', 3_000);
    queue.schedule('b', null);
    clock.increment(2_500);
    expect(batches).toEqual([]);
    clock.increment(2_000);
    expect(batches).toEqual([['a']]);
    expect(queue.size).toBe(0);
  });

  it('fires keys due in the past at once, and handles delays beyond setTimeout’s 2^31-1 ms limit', () => {
    const { clock, batches, queue } = setup();
    queue.schedule('late', 10);
    queue.schedule('far', 1_000 + 40 * 86_400_000);
    clock.increment(0);
    expect(batches).toEqual([['late']]);
    clock.increment(40 * 86_400_000 - 1);
    expect(batches).toHaveLength(1);
    clock.increment(1);
    expect(batches).toEqual([['late'], ['far']]);
  });

  it('keeps one armed timer whatever the number of keys', () => {
    const { clock, queue } = setup();
    for (let i = 0; i < 10_000; i++) queue.schedule(`k${i}`, 2_000 + (i % 100));
    expect(clock.pendingTimers).toBe(1);
  });

  it('lets a handler reschedule keys during its batch', () => {
    const clock = new SimulatedClock(0);
    const seen: number[] = [];
    const queue: TimerQueue = new TimerQueue(clock, (keys) => {
      seen.push(clock.now());
      for (const k of keys) if (seen.length < 3) queue.schedule(k, clock.now() + 1_000);
    });
    queue.schedule('x', 1_000);
    clock.increment(10_000);
    expect(seen).toEqual([1_000, 2_000, 3_000]);
  });

  it('stop() disarms', () => {
    const { clock, batches, queue } = setup();
    queue.schedule('a', 2_000);
    queue.stop();
    clock.increment(5_000);
    expect(batches).toEqual([]);
  });
});

describe('SimulatedClock', () => {
  it('refuses to go backwards and runs timers at their due time', () => {
    const clock = new SimulatedClock(0);
    const at: number[] = [];
    clock.setTimer(() => at.push(clock.now()), 50);
    clock.setTimer(() => at.push(clock.now()), 20);
    clock.increment(100);
    expect(at).toEqual([20, 50]);
    expect(clock.now()).toBe(100);
    expect(() => clock.increment(-1)).toThrow(/backwards/);
    expect(() => clock.set(10)).toThrow(/backwards/);
  });
});

describe('TimerQueue memory', () => {
  it('does not accumulate replaced entries when keys keep moving earlier', () => {
    const clock = new SimulatedClock(0);
    const queue = new TimerQueue(clock, () => {});
    for (let round = 0; round < 200; round++) {
      // Each key is armed far ahead, then moved earlier: the far entry is left behind in the heap.
      for (let k = 0; k < 100; k++) {
        queue.schedule(`k${k}`, 3_600_000 + round);
        queue.schedule(`k${k}`, 1_000 + round);
      }
    }
    expect(queue.size).toBe(100);
    expect(queue.entries).toBeLessThanOrEqual(2 * 100 + 1024 + 1);
  });
});
