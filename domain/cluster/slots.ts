import { z } from 'zod';
import { parseOrThrow } from '../errors/index.js';
import { murmurHash3 } from './murmurHash3.js';

/** Slots of a new cluster unless its creator says otherwise; fixed for the cluster's lifetime (design §4). */
export const DEFAULT_SLOT_COUNT = 1024;

/** Upper bound on slots: each one is a lease znode, so more would only load ZooKeeper. */
export const MAX_SLOT_COUNT = 65_536;

export const SlotCount = z
  .number()
  .int('must be an integer')
  .min(1, 'must be at least 1')
  .max(MAX_SLOT_COUNT, `must be at most ${MAX_SLOT_COUNT}`);

/** Throws a `ValidationError` unless `slotCount` is an integer in [1, MAX_SLOT_COUNT]. */
export const checkSlotCount = (slotCount: number): void => {
  // zod only on the rare bad value: slotOf runs for every task on every membership change.
  if (!(Number.isInteger(slotCount) && slotCount >= 1 && slotCount <= MAX_SLOT_COUNT)) {
    parseOrThrow(SlotCount, slotCount, 'slotCount');
  }
};

/** Seed of the task → slot hash. Part of the on-disk contract, like the hash itself. */
export const SLOT_HASH_SEED = 0;

/**
 * The slot of a task: `murmurHash3_x86_32(utf8(taskId), seed 0) mod slotCount`.
 *
 * This decides which node owns a task across every node and every Kairos version of a cluster, so it must
 * never change; `test/unit/cluster.slots.unit.spec.ts` pins known values. Throws a `ValidationError` for a
 * slot count that is not an integer in [1, MAX_SLOT_COUNT].
 */
export const slotOf = (taskId: string, slotCount: number): number => {
  checkSlotCount(slotCount);
  return murmurHash3(taskId, SLOT_HASH_SEED) % slotCount;
};
