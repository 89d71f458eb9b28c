import type { ClusterEvent } from '../cluster/events.js';
import type { TaskEvent } from '../task/events.js';
import { toMillis } from '../time/instant.js';

/**
 * When an event says it happened: a fire's `firedAt`, every other event's `at`. Unlike the time a
 * store recorded it, this survives an export and an import into a new store, so point in time,
 * explain and the read models' notion of "now" mean the same after a disaster recovery.
 */
export const occurredAtOf = (event: TaskEvent | ClusterEvent): number => {
  const data = event.data as { at?: string; firedAt?: string };
  return toMillis((data.firedAt ?? data.at) as string);
};
