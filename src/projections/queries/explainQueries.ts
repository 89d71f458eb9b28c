import type { ClusterEvent } from '../../../domain/cluster/events.js';
import { explainTick, type LoggedEvent } from '../../../domain/projections/explain.js';
import { redactEvent } from '../../../domain/projections/redaction.js';
import { CLUSTER_STREAM, taskStreamOf, type TaskEvent } from '../../../domain/task/events.js';
import { NotFoundError } from '../../../domain/errors/index.js';
import type { Clock } from '../../clock/clock.js';
import type { EventStore } from '../../store/eventStore.js';
import { decodeLogEvent } from '../projectedEvent.js';

/** Why a task did or did not fire around `at`, from its stream and the cluster's. */
export const queryExplain = async (store: EventStore, clock: Clock, args: { task: string; at: number }) => {
  const [taskEvents, clusterEvents] = await Promise.all([
    store.readStream(taskStreamOf(args.task)),
    store.readStream(CLUSTER_STREAM),
  ]);
  if (taskEvents.length === 0) throw new NotFoundError('task', args.task);
  const task: LoggedEvent<TaskEvent>[] = [];
  const cluster: LoggedEvent<ClusterEvent>[] = [];
  for (const recorded of [...taskEvents, ...clusterEvents]) {
    const decoded = decodeLogEvent(recorded);
    if (!decoded.ok) continue;
    const e = decoded.event;
    const logged = { position: e.position, revision: e.revision, metadata: e.metadata };
    if (e.kind === 'task') task.push({ ...logged, event: redactEvent(e.event) });
    else cluster.push({ ...logged, event: e.event });
  }
  return explainTick({ taskId: args.task, at: args.at, now: clock.now(), task, cluster });
};
