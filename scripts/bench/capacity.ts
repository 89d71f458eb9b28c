import { firingPhase, type TickSpread } from './firingPhase.js';
import { percentile } from './fixtures.js';
import type { Result } from './scenarios.js';

/**
 * `capacity` (issue 10): the loads of the table, each on a fresh node started as `npm start`
 * does (read side on), tasks created with `kairos apply -f`, one SDK subscriber in its own process;
 * handler-observed lateness. BullMQ side by side is still to come (docs/benchmarks.md, "Capacity").
 */
const LOADS: { tasks: number; ticks: TickSpread }[] = [
  { tasks: 1_000, ticks: 'spread' },
  { tasks: 2_500, ticks: 'spread' },
  { tasks: 5_000, ticks: 'spread' },
  { tasks: 10_000, ticks: 'spread' },
  { tasks: 1_000, ticks: 'aligned' },
  { tasks: 10_000, ticks: 'aligned' },
  { tasks: 20_000, ticks: 'spread' },
];

export const capacity = async (quick: boolean): Promise<Result> => {
  const loads = quick ? LOADS.filter((l) => l.tasks <= 2_500) : LOADS;
  const warmMs = quick ? 5_000 : 10_000;
  const measureMs = quick ? 10_000 : 30_000;
  const result: Result = {
    scenario: `capacity: tasks every 1s (spread, or aligned: cron * * * * * *), overlap allow; kairos start (read side on), kairos apply -f, one SDK subscriber; ${warmMs / 1000}s warm-up + ${measureMs / 1000}s measured per load`,
  };
  for (const load of loads) {
    const p = await firingPhase(`${load.tasks} ${load.ticks}`, { ...load, env: {}, warmMs, measureMs });
    const l = p.lateness;
    result[`${p.name}: handled/s (expected)`] = `${p.handledPerSecond} (${load.tasks})`;
    result[`${p.name}: lateness p50 / p99 / max ms`] =
      `${percentile(l, 50)} / ${percentile(l, 99)} / ${l.at(-1) ?? Number.NaN}`;
    result[`${p.name}: handler runs for a fire already handled`] = p.duplicates;
    result[`${p.name}: RSS MiB node / read side (max)`] = `${p.nodeRssMib} / ${p.readSideRssMib || '-'}`;
    result[`${p.name}: CPU % node / read side / subscriber`] =
      `${p.cpu.node} / ${p.cpu.readSide || '-'} / ${p.cpu.subscriber}`;
    result[`${p.name}: kairos apply s`] = p.applySeconds;
  }
  return result;
};
