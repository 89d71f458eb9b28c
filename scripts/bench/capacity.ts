import { bullmqPhase } from './bullmqPhase.js';
import { firingPhase, type TickSpread } from './firingPhase.js';
import { percentile } from './fixtures.js';
import type { Result } from './scenarios.js';

type Load = { tasks: number; ticks: TickSpread };

/** The loads of issue 10's table. */
const LOADS: Load[] = [
  { tasks: 1_000, ticks: 'spread' },
  { tasks: 2_500, ticks: 'spread' },
  { tasks: 5_000, ticks: 'spread' },
  { tasks: 10_000, ticks: 'spread' },
  { tasks: 1_000, ticks: 'aligned' },
  { tasks: 10_000, ticks: 'aligned' },
  { tasks: 20_000, ticks: 'spread' },
];

/**
 * `BENCH_LOADS=10000/spread,20000/spread` runs only those loads, `BENCH_SYSTEMS=kairos` (or `bullmq`)
 * only that system: to measure one point again without the whole table.
 */
const selected = (quick: boolean): { loads: Load[]; systems: Set<string> } => {
  const named = process.env.BENCH_LOADS?.split(',').map((text): Load => {
    const [tasks, ticks] = text.split('/');
    if (!Number.isInteger(Number(tasks)) || (ticks !== 'spread' && ticks !== 'aligned'))
      throw new Error(`BENCH_LOADS: '${text}' is not <tasks>/<spread|aligned>`);
    return { tasks: Number(tasks), ticks };
  });
  const systems = new Set(process.env.BENCH_SYSTEMS?.split(',') ?? ['kairos', 'bullmq']);
  for (const s of systems) if (s !== 'kairos' && s !== 'bullmq') throw new Error(`BENCH_SYSTEMS: unknown '${s}'`);
  return { loads: named ?? (quick ? LOADS.filter((l) => l.tasks <= 2_500) : LOADS), systems };
};

/**
 * `capacity` (issue 10): the loads of the table on Kairos and on BullMQ side by side, each load
 * on a fresh system, handler-observed lateness. Kairos: a node started as `npm start` does (read side
 * on), tasks created with `kairos apply -f`, one SDK subscriber in its own process. BullMQ 6.7: its own
 * redis-server (AOF `everysec`), job schedulers created with `upsertJobScheduler`, one worker of
 * concurrency 200 in its own process (bullmqPhase.ts).
 */
export const capacity = async (quick: boolean): Promise<Result> => {
  const { loads, systems } = selected(quick);
  const warmMs = quick ? 5_000 : 10_000;
  const measureMs = quick ? 10_000 : 30_000;
  const result: Result = {
    scenario: `capacity: tasks every 1s (spread, or aligned: cron * * * * * *), handler returns at once; Kairos: kairos start (read side on), kairos apply -f, one SDK subscriber, overlap allow; BullMQ 6.7.6: redis-server 7 (AOF everysec), upsertJobScheduler, one worker (concurrency 200); ${warmMs / 1000}s warm-up + ${measureMs / 1000}s measured per load`,
  };
  for (const load of loads) {
    const name = `${load.tasks} ${load.ticks}`;
    if (systems.has('kairos')) {
      const p = await firingPhase(name, { ...load, env: {}, warmMs, measureMs });
      const row = rowsOf(result, `kairos ${name}`, p.lateness, p.handledPerSecond, load.tasks, p.duplicates);
      row('RSS MiB node / read side (max)', `${p.nodeRssMib} / ${p.readSideRssMib || '-'}`);
      row('CPU % node / read side / subscriber', `${p.cpu.node} / ${p.cpu.readSide || '-'} / ${p.cpu.subscriber}`);
      row('kairos apply -f s', p.applySeconds);
    }
    if (systems.has('bullmq')) {
      const p = await bullmqPhase(name, { ...load, warmMs, measureMs });
      const row = rowsOf(result, `bullmq ${name}`, p.lateness, p.handledPerSecond, load.tasks, p.duplicates);
      row('RSS MiB redis-server / worker (max)', `${p.redisRssMib} / ${p.workerRssMib}`);
      row('CPU % redis-server / worker', `${p.cpu.redis} / ${p.cpu.worker}`);
      row('upsertJobScheduler × tasks s', p.applySeconds);
      if (p.workerErrors.length > 0) row('worker errors', `${p.workerErrors.length} (first: ${p.workerErrors[0]})`);
    }
  }
  return result;
};

/** The rows both systems have; returns a function adding that system's own. */
const rowsOf = (
  result: Result,
  name: string,
  lateness: number[],
  handledPerSecond: number,
  tasks: number,
  duplicates: number,
) => {
  const row = (what: string, value: string | number): void => {
    result[`${name}: ${what}`] = value;
  };
  row('handled/s (expected)', `${handledPerSecond} (${tasks})`);
  row(
    'lateness p50 / p99 / max ms',
    `${percentile(lateness, 50)} / ${percentile(lateness, 99)} / ${lateness.at(-1) ?? Number.NaN}`,
  );
  row('handler runs for a fire already handled', duplicates);
  return row;
};
