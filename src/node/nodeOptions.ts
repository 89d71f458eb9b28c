import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock/clock.js';
import type { Coordinator } from '../coordination/coordinator.js';
import type { EventStore } from '../store/eventStore.js';
import type { Target } from '../targets/dispatcher.js';
import { silentLogger } from './logger.js';
import type { SnapshotOptions } from './snapshotKeeper.js';
import type { RetentionOptions } from './taskRetention.js';

export type SchedulerNodeOptions = {
  nodeId: string;
  store: EventStore;
  /** Built once recovery knows the highest epoch in the log (the local coordinator needs it). */
  coordinator: (recovered: { maxEpoch: number }) => Coordinator;
  target: Target;
  clock?: Clock;
  logger?: Logger;
  /** Events read per page during recovery. @default 5_000 */
  recoveryPageSize?: number;
  /**
   * On stop, how long to wait for fires this node handed to its targets to report an outcome before
   * leaving them to the next owner (who delivers them again). @default 5_000
   */
  drainTimeoutMs?: number;
  /** How often the cluster leader looks for orphaned leases besides reacting to changes. @default 5_000 */
  housekeepingIntervalMs?: number;
  /** How much execution history task streams keep (docs/operations.md, "Retention"). @default everything */
  retention?: RetentionOptions;
  /**
   * Decisions under way at most (due tasks, outcomes, commands); due tasks beyond wait their turn, and
   * the ticks they miss meanwhile are recorded as misfired with cause `overload`. @default 10_000
   */
  maxDecisionsInFlight?: number;
  /**
   * How long before its instant a due task of a large instant is decided and held, to be appended
   * with the others due at that instant as one batch (FiresAhead); 0 decides each when due. @default 0
   */
  fireLeadMs?: number;
  /** Where to keep state snapshots, and how often to save one (docs/operations.md). @default none */
  snapshot?: SnapshotOptions | null;
};

export type CompiledNodeOptions = Required<Omit<SchedulerNodeOptions, 'retention' | 'snapshot'>> & {
  retention: RetentionOptions;
  snapshot: SnapshotOptions | null;
};

/** The node's options with their defaults, once. */
export const compileNodeOptions = (options: SchedulerNodeOptions): CompiledNodeOptions => ({
  ...options,
  clock: options.clock ?? systemClock,
  logger: options.logger ?? silentLogger,
  recoveryPageSize: options.recoveryPageSize ?? 5_000,
  drainTimeoutMs: options.drainTimeoutMs ?? 5_000,
  housekeepingIntervalMs: options.housekeepingIntervalMs ?? 5_000,
  retention: options.retention ?? {},
  maxDecisionsInFlight: options.maxDecisionsInFlight ?? 10_000,
  fireLeadMs: options.fireLeadMs ?? 0,
  snapshot: options.snapshot ?? null,
});
