import { BehaviorSubject, Subject } from 'rxjs';
import { toMillis } from '../../../domain/time/instant.js';
import type { TaskSpecInput } from '../../../domain/task/spec.js';
import { TaskSpec } from '../../../domain/task/spec.js';
import type { Clock } from '../../../src/clock/clock.js';
import { type SimulatedClock } from '../../../src/clock/simulatedClock.js';
import type {
  ClusterMember,
  ClusterView,
  Coordinator,
  CoordinatorEvent,
  Lease,
  OrphanedLease,
} from '../../../src/coordination/coordinator.js';
import { SchedulerNode } from '../../../src/node/schedulerNode.js';
import type { RetentionOptions } from '../../../src/node/taskRetention.js';
import type { EventStore, RecordedEvent } from '../../../src/store/eventStore.js';
import type { FireDelivery, FireOutcome, Target } from '../../../src/targets/dispatcher.js';

/** A target that records deliveries; tests answer them with `succeed`/`fail` like a business service would. */
export class RecordingTarget implements Target {
  readonly delivered: FireDelivery[] = [];
  readonly cancelled: string[] = [];
  listener: (o: FireOutcome) => void = () => {};
  deliver(fire: FireDelivery): void {
    this.delivered.push(fire);
  }
  cancel(fireId: string, attempt: number): void {
    this.cancelled.push(`${fireId}#${attempt}`);
  }
  async close(): Promise<void> {}
  answer(fire: FireDelivery, status: 'succeeded' | 'failed', at: number, message?: string): void {
    this.listener({
      taskId: fire.taskId,
      fireId: fire.fireId,
      attempt: fire.attempt,
      status,
      at,
      details: [],
      ...(message ? { message } : {}),
    });
  }
}

/** A coordinator that holds every slot at a fixed epoch: lets a test play two nodes that both believe they own a task. */
export class FixedLeaseCoordinator implements Coordinator {
  readonly events$ = new Subject<CoordinatorEvent>();
  readonly members$: BehaviorSubject<readonly ClusterMember[]>;
  readonly leader$: BehaviorSubject<string | null>;
  constructor(
    readonly nodeId: string,
    readonly epoch: number,
  ) {
    this.members$ = new BehaviorSubject<readonly ClusterMember[]>([{ id: nodeId, weight: 1, labels: {} }]);
    this.leader$ = new BehaviorSubject<string | null>(nodeId);
  }
  async start(): Promise<void> {
    this.events$.next({ type: 'leases-changed' });
  }
  leaseFor(): Lease {
    return { node: this.nodeId, epoch: this.epoch };
  }
  describe(): ClusterView {
    return {
      mode: 'single',
      nodeId: this.nodeId,
      connection: 'connected',
      slotCount: null,
      members: [],
      heldSlots: null,
      leader: this.nodeId,
      unplaceable: [],
      slotOwners: null,
    };
  }
  place(): void {}
  renewLease(): void {}
  async removeOrphanedLeases(): Promise<OrphanedLease[]> {
    return [];
  }

  async publishAssignment(): Promise<null> {
    return null;
  }
  async stop(): Promise<void> {}
}

/** Lets promise chains and setImmediate-based store flushes run. */
export const flush = async (rounds = 5): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** Moves simulated time in steps, letting the node append and react between steps. */
export const run = async (clock: SimulatedClock, ms: number, step = 100): Promise<void> => {
  for (let passed = 0; passed < ms; passed += step) {
    clock.increment(Math.min(step, ms - passed));
    await flush();
  }
};

export const startNode = async (options: {
  store: EventStore;
  clock: Clock;
  nodeId?: string;
  epoch?: number;
  autoSucceed?: boolean;
  recoveryPageSize?: number;
  retention?: RetentionOptions;
  fireLeadMs?: number;
  maxDecisionsInFlight?: number;
  /** The node's coordinator, made at its start; default: a FixedLeaseCoordinator at `epoch`. */
  coordinator?: (nodeId: string, epoch: number) => Coordinator;
}) => {
  const target = new RecordingTarget();
  const node = new SchedulerNode({
    nodeId: options.nodeId ?? 'n1',
    store: options.store,
    clock: options.clock,
    target,
    ...(options.recoveryPageSize ? { recoveryPageSize: options.recoveryPageSize } : {}),
    ...(options.retention ? { retention: options.retention } : {}),
    ...(options.fireLeadMs ? { fireLeadMs: options.fireLeadMs } : {}),
    ...(options.maxDecisionsInFlight ? { maxDecisionsInFlight: options.maxDecisionsInFlight } : {}),
    // Targets here answer on the simulated clock, which nobody advances during a stop.
    drainTimeoutMs: 0,
    coordinator: ({ maxEpoch }) =>
      (options.coordinator ?? ((id, epoch) => new FixedLeaseCoordinator(id, epoch)))(
        options.nodeId ?? 'n1',
        options.epoch ?? maxEpoch + 1,
      ),
  });
  target.listener = (o) => void node.reportOutcome(o);
  if (options.autoSucceed) {
    const deliver = target.deliver.bind(target);
    target.deliver = (fire) => {
      deliver(fire);
      queueMicrotask(() => target.answer(fire, 'succeeded', options.clock.now()));
    };
  }
  await node.start();
  return { node, target };
};

export const specOf = (input: Partial<TaskSpecInput> & { id: string }): TaskSpec =>
  TaskSpec.parse({ schedule: { every: '1s' }, target: { topic: 'jobs' }, ...input });

export const firedOf = (events: readonly RecordedEvent[]) =>
  events
    .filter((e) => e.type === 'TaskFired')
    .map(
      (e) =>
        e.data as {
          taskId: string;
          fireId: string;
          scheduledAt: string;
          firedAt: string;
          attempt: number;
          trigger: string;
          node: string;
          epoch: number;
        },
    );

export const scheduledMs = (iso: string): number => toMillis(iso);
