import { describe, expect, it } from 'vitest';
import { NodeLoad } from '../../src/app/nodeLoad.js';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';

/** Feeds the monitor one utilization per second and records what it concluded after each. */
const judge = (samples: number[]): boolean[] => {
  const clock = new SimulatedClock(0);
  let next = 0;
  const load = new NodeLoad({ clock, utilization: () => samples[next++] ?? 0 });
  const seen: boolean[] = [];
  load.start();
  for (let i = 0; i < samples.length; i++) {
    clock.increment(1_000);
    seen.push(load.busy$.value);
  }
  load.stop();
  return seen;
};

describe('NodeLoad', () => {
  it('turns busy after two seconds in a row at 40 % or more of the event loop, not on one busy second', () => {
    expect(judge([0.9, 0.1, 0.9, 0.1])).toEqual([false, false, false, false]);
    expect(judge([0.1, 0.4, 0.6, 0.7])).toEqual([false, false, true, true]);
  });

  it('turns calm again only after five seconds in a row below 20 %', () => {
    const busyThen = [0.8, 0.8];
    expect(judge([...busyThen, 0.1, 0.1, 0.1, 0.1, 0.3, 0.1])).toEqual([
      false,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(judge([...busyThen, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9])).toEqual([
      false,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it('measures the real event loop by default: a busy loop is busy', async () => {
    const clock = new SimulatedClock(0);
    const measured = new NodeLoad({ clock });
    measured.start();
    for (let i = 0; i < 2; i++) {
      const until = Date.now() + 120;
      while (Date.now() < until);
      await new Promise((resolve) => setTimeout(resolve, 10));
      clock.increment(1_000);
    }
    expect(measured.busy$.value).toBe(true);
    measured.stop();
  });
});
