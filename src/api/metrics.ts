import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { toMillis } from '../../domain/time/instant.js';
import type { Clock } from '../clock/clock.js';
import type { SchedulerNode } from '../node/schedulerNode.js';
import type { QueryResult } from '../projections/queries/index.js';
import type { TopicHub } from '../targets/topic/topicHub.js';
import { registerReadMetrics } from './readMetrics.js';

/**
 * Prometheus metrics of one node: what this process appended (after it is durable) as `kairos_*`, and,
 * with a read side, the cluster's work from the read models as `kairos_cluster_*`.
 */
export const nodeMetrics = (
  node: SchedulerNode,
  hub: TopicHub,
  clock: Clock,
  readMetrics: (() => Promise<QueryResult<'metrics'>>) | null,
): Registry => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'kairos_process_' });
  const fires = new Counter({
    name: 'kairos_fires_total',
    help: 'Fires recorded by this node',
    labelNames: ['trigger'],
    registers: [registry],
  });
  const outcomes = new Counter({
    name: 'kairos_outcomes_total',
    help: 'Final and retried outcomes recorded',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const gaps = new Counter({
    name: 'kairos_ticks_not_fired_total',
    help: 'Ticks skipped (overlap) or misfired: late (the node was down or behind) or overload (due work waited for room)',
    labelNames: ['kind', 'cause'],
    registers: [registry],
  });
  const lateness = new Histogram({
    name: 'kairos_fire_lateness_seconds',
    help: 'How late first attempts went out: when the fire was recorded (its append committed, delivery begins) - scheduledAt',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [registry],
  });
  new Gauge({
    name: 'kairos_tasks',
    help: 'Tasks known to this node',
    registers: [registry],
    collect() {
      this.set(node.taskCount);
    },
  });
  new Gauge({
    name: 'kairos_subscribers',
    help: 'Connected topic consumers',
    registers: [registry],
    collect() {
      this.set(Object.values(hub.stats().consumersByGroup).reduce((a, b) => a + b, 0));
    },
  });
  // Every queue of the firing pipeline, with its bound: where lateness builds up past capacity.
  new Gauge({
    name: 'kairos_queue_depth',
    help: 'Items in a queue of the firing pipeline: due tasks waiting for room, tasks held for their instant, decisions under way, outcomes waiting for an instant to go out, topic deliveries awaiting a consumer or an outcome',
    labelNames: ['queue'],
    registers: [registry],
    collect() {
      const p = node.pipeline();
      const hubStats = hub.stats();
      this.set({ queue: 'due_waiting' }, p.dueWaiting);
      this.set({ queue: 'held_ahead' }, p.heldAhead);
      this.set({ queue: 'decisions_in_flight' }, p.decisionsInFlight);
      this.set({ queue: 'outcomes_waiting' }, p.outcomesWaiting);
      this.set({ queue: 'deliveries_pending' }, hubStats.pending);
      this.set({ queue: 'deliveries_in_flight' }, hubStats.inFlight);
    },
  });
  new Gauge({
    name: 'kairos_queue_bound',
    help: 'The most a queue of the firing pipeline holds (due_waiting, held_ahead: one entry per task)',
    labelNames: ['queue'],
    registers: [registry],
    collect() {
      const p = node.pipeline();
      this.set({ queue: 'due_waiting' }, node.taskCount);
      this.set({ queue: 'held_ahead' }, node.taskCount);
      this.set({ queue: 'decisions_in_flight' }, p.maxDecisionsInFlight);
      this.set({ queue: 'outcomes_waiting' }, p.maxOutcomesWaiting);
    },
  });
  node.appended$.subscribe(({ events }) => {
    for (const e of events) {
      if (e.type === 'TaskFired') {
        fires.inc({ trigger: e.data.trigger });
        // From the commit rather than `firedAt`: a fire decided ahead records its instant as `firedAt`.
        if (e.data.attempt === 1) lateness.observe((clock.now() - toMillis(e.data.scheduledAt)) / 1000);
      } else if (e.type === 'TaskSucceeded') outcomes.inc({ outcome: 'succeeded' });
      else if (e.type === 'TaskFailed') outcomes.inc({ outcome: e.data.willRetryAt ? 'retrying' : e.data.reason });
      else if (e.type === 'TaskSkipped') gaps.inc({ kind: 'skipped', cause: 'overlap' }, e.data.count ?? 1);
      else if (e.type === 'TaskMisfired')
        gaps.inc({ kind: e.data.action, cause: e.data.cause ?? 'late' }, e.data.count ?? 1);
    }
  });
  if (readMetrics) registerReadMetrics(registry, readMetrics, clock);
  return registry;
};
