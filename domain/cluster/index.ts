export {
  assignSlots,
  movedSlots,
  ownerOf,
  rendezvousDraw,
  rendezvousOwner,
  rendezvousScore,
  slotCountsOf,
} from './assignment.js';
export type { Candidate } from './assignment.js';
export { Member, NodeId, isPinned, matchesRunOn } from './members.js';
export type { MemberInput, RunOn } from './members.js';
export { murmurHash3 } from './murmurHash3.js';
export { DEFAULT_SLOT_COUNT, MAX_SLOT_COUNT, SLOT_HASH_SEED, SlotCount, checkSlotCount, slotOf } from './slots.js';
export { ClusterEvent, MAX_LISTED_TASKS } from './events.js';
export type { ClusterEventData, ClusterEventType } from './events.js';
export { decideCluster, emptyClusterLog, evolveCluster, slotMovesOf } from './clusterLog.js';
export type { ClusterLogState, ClusterObservation, RecordedMember } from './clusterLog.js';
export { balanceSlots } from './balance.js';
export type { BalanceInput, PublishedAssignment } from './balance.js';
