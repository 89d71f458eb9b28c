import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../clock/clock.js';
import type { QueryResult } from '../projections/queries/index.js';

type ReadMetrics = QueryResult<'metrics'>;

/** A scrape does not wait for a busy read side longer than this: its cluster metrics are then left out. */
const FETCH_DEADLINE_MS = 5_000;

/** One read per scrape: every metric below asks, the first one fetches. */
const memoised = (fetch: () => Promise<ReadMetrics>, ttlMs: number, clock: Clock) => {
  let cached: { at: number; value: Promise<ReadMetrics | null> } | null = null;
  const bounded = (): Promise<ReadMetrics | null> =>
    new Promise((resolve) => {
      const deadline = clock.setTimer(() => resolve(null), FETCH_DEADLINE_MS);
      fetch().then(
        (value) => (deadline.cancel(), resolve(value)),
        () => (deadline.cancel(), resolve(null)),
      );
    });
  return (): Promise<ReadMetrics | null> => {
    if (!cached || clock.now() - cached.at > ttlMs) cached = { at: clock.now(), value: bounded() };
    return cached.value;
  };
};

/**
 * Metrics of the cluster's work, from the read models (design §6): every node's fires, outcomes and
 * tasks, not only what this process appended since it started — so any node's `/metrics` tells the same
 * story. Labels are a handful of fixed values: no task ids.
 */
export const registerReadMetrics = (registry: Registry, fetch: () => Promise<ReadMetrics>, clock: Clock): void => {
  const metrics = memoised(fetch, 500, clock);
  const counter = (
    name: string,
    help: string,
    labelNames: string[],
    values: (m: ReadMetrics) => Array<[Record<string, string>, number]>,
  ) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const m = await metrics();
        if (!m) return;
        // A counter mirrors a total the read models keep: set it by resetting and adding.
        this.reset();
        for (const [labels, value] of values(m)) this.inc(labels, value);
      },
    });
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    values: (m: ReadMetrics) => Array<[Record<string, string>, number | null]>,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const m = await metrics();
        if (!m) return;
        this.reset();
        for (const [labels, value] of values(m)) if (value !== null) this.set(labels, value);
      },
    });
  const total = (m: ReadMetrics, key: keyof NonNullable<ReadMetrics['totals']>): number => Number(m.totals?.[key] ?? 0);

  counter('kairos_cluster_fires_total', 'Fires recorded in the log by any node (first attempts)', ['trigger'], (m) => [
    [{ trigger: 'schedule' }, total(m, 'fires') - total(m, 'manual') - total(m, 'catchUp')],
    [{ trigger: 'catch-up' }, total(m, 'catchUp')],
    [{ trigger: 'manual' }, total(m, 'manual')],
  ]);
  counter('kairos_cluster_retries_total', 'Retry attempts recorded in the log', [], (m) => [[{}, total(m, 'retries')]]);
  counter('kairos_cluster_outcomes_total', 'Final outcomes, and failed attempts a retry follows', ['outcome'], (m) => [
    [{ outcome: 'succeeded' }, total(m, 'succeeded')],
    [{ outcome: 'failed' }, total(m, 'failed') - total(m, 'timedOut')],
    [{ outcome: 'timed-out' }, total(m, 'timedOut')],
    [{ outcome: 'retried' }, total(m, 'retried')],
  ]);
  counter(
    'kairos_cluster_ticks_not_fired_total',
    'Ticks skipped (overlap) or misfired (misfire policy)',
    ['kind'],
    (m) => [
      [{ kind: 'skipped' }, total(m, 'skipped')],
      [{ kind: 'misfired' }, total(m, 'misfired')],
    ],
  );
  gauge('kairos_cluster_tasks', 'Tasks by lifecycle state', ['state'], (m) =>
    ['idle', 'running', 'paused', 'deleted'].map((state) => [{ state }, m.tasks[state] ?? 0]),
  );
  gauge('kairos_cluster_failing_tasks', 'Tasks whose last fire failed', [], (m) => [[{}, m.failing]]);
  gauge('kairos_cluster_fires_in_flight', 'Attempts waiting for an outcome or a retry', [], (m) => [[{}, m.inFlight]]);
  gauge('kairos_cluster_lateness_seconds', 'Fire lateness over the last 5 minutes of the log', ['quantile'], (m) => [
    [{ quantile: '0.5' }, m.recentLateness.p50Ms === null ? null : m.recentLateness.p50Ms / 1000],
    [{ quantile: '0.99' }, m.recentLateness.p99Ms === null ? null : m.recentLateness.p99Ms / 1000],
    [{ quantile: '1' }, m.recentLateness.maxMs === null ? null : m.recentLateness.maxMs / 1000],
  ]);
  gauge('kairos_read_models_position', 'The log position every read model includes', [], (m) => [[{}, m.position]]);
  counter(
    'kairos_read_models_undecodable_events_total',
    'Events the read models skipped (cannot be decoded)',
    [],
    (m) => [[{}, m.undecodable]],
  );
};
