import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMEOUT_MS, systemClock } from '../../src/clock/clock.js';

describe('system clock timers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs the callback once its delay has passed, and not when cancelled', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const ran: string[] = [];
    systemClock.setTimer(() => ran.push('a'), 100);
    const b = systemClock.setTimer(() => ran.push('b'), 100);
    systemClock.setTimer(() => ran.push('c'), -5);
    b.cancel();
    vi.advanceTimersByTime(99);
    expect(ran).toEqual(['c']);
    vi.advanceTimersByTime(1);
    expect(ran).toEqual(['c', 'a']);
    vi.advanceTimersByTime(10_000);
    expect(ran).toEqual(['c', 'a']);
  });

  it('waits out a delay longer than setTimeout takes, in steps, and can be cancelled between them', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const ran: number[] = [];
    const long = MAX_TIMEOUT_MS + 5_000;
    systemClock.setTimer(() => ran.push(Date.now()), long);
    const cancelled = systemClock.setTimer(() => ran.push(-1), long);
    const start = Date.now();
    vi.advanceTimersByTime(MAX_TIMEOUT_MS);
    expect(ran).toEqual([]);
    cancelled.cancel();
    vi.advanceTimersByTime(5_000);
    expect(ran).toEqual([start + long]);
  });
});
