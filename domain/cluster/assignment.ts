import { ValidationError } from '../errors/index.js';
import { type Member, type RunOn, isPinned, matchesRunOn } from './members.js';
import { murmurHash3 } from './murmurHash3.js';
import { checkSlotCount, slotOf } from './slots.js';

/** What the assignment needs to know of a member. */
export type Candidate = Pick<Member, 'id' | 'weight'>;

const utf8 = new TextEncoder();

// Seeds of the two 32-bit halves of the (slot, member) draw. Part of the ownership contract: never change.
const DRAW_SEED_HIGH = 0x9e3779b9;
const DRAW_SEED_LOW = 0x85ebca6b;
const TWO_POW_20 = 2 ** 20;
const TWO_POW_52 = 2 ** 52;

/**
 * The rendezvous draw of `(slot, memberId)`: a stable number strictly inside (0, 1), from 52 bits of
 * MurmurHash3 of the UTF-8 key `"<slot>:<memberId>"` (32 bits with seed 0x9e3779b9, then the top 20 bits
 * with seed 0x85ebca6b). `(n + 0.5) / 2^52` is exact in a double and never reaches 0 or 1, so its log is
 * finite and non-zero.
 */
export const rendezvousDraw = (slot: number, memberId: string): number => {
  // Encoded once for both halves: this runs slotCount × members times per membership change.
  const key = utf8.encode(`${slot}:${memberId}`);
  const high = murmurHash3(key, DRAW_SEED_HIGH);
  const low = murmurHash3(key, DRAW_SEED_LOW) >>> 12;
  return (high * TWO_POW_20 + low + 0.5) / TWO_POW_52;
};

/**
 * Weighted rendezvous score `-weight / ln(u)`: `-1/ln(u)` of a uniform draw is distributed so that the
 * member with the highest score wins a slot with probability exactly `weight / totalWeight`.
 */
export const rendezvousScore = (slot: number, member: Candidate): number =>
  -member.weight / Math.log(rendezvousDraw(slot, member.id));

/**
 * The member that wins `slot` among `candidates` (highest score; the smaller id on an exact tie, so the
 * order of `candidates` never matters), or null when there is none.
 */
export const rendezvousOwner = (slot: number, candidates: readonly Candidate[]): string | null => {
  let best: string | null = null;
  let bestScore = -Infinity;
  for (const candidate of candidates) {
    const score = rendezvousScore(slot, candidate);
    if (score > bestScore || (score === bestScore && best !== null && candidate.id < best)) {
      best = candidate.id;
      bestScore = score;
    }
  }
  return best;
};

const checkMembers = (members: readonly Candidate[]): void => {
  const seen = new Set<string>();
  members.forEach((member, i) => {
    // A repeated id would make the result depend on which copy (and which weight) comes first.
    if (seen.has(member.id)) {
      throw new ValidationError([{ path: `members.${i}.id`, message: `'${member.id}' appears more than once` }]);
    }
    seen.add(member.id);
    if (!(Number.isFinite(member.weight) && member.weight > 0)) {
      throw new ValidationError([{ path: `members.${i}.weight`, message: 'must be a positive finite number' }]);
    }
  });
};

/**
 * The owner of every slot: `owners[slot]` is the id of the member that wins the slot by weighted
 * rendezvous hashing (highest random weight). Each slot is decided on its own, so a joining member takes
 * only the slots it now wins and a leaving member gives up only its own; the result does not depend on
 * the order of `members`. With no member the result is `[]`: no slot has an owner.
 *
 * Throws a `ValidationError` for a bad slot count, a repeated member id or a weight that is not positive.
 */
export const assignSlots = (slotCount: number, members: readonly Candidate[]): string[] => {
  checkSlotCount(slotCount);
  checkMembers(members);
  if (members.length === 0) return [];
  const owners = new Array<string>(slotCount);
  for (let slot = 0; slot < slotCount; slot++) owners[slot] = rendezvousOwner(slot, members)!;
  return owners;
};

/**
 * The member that should hold a pinned task, or null when none may: the rendezvous winner of its slot
 * among the members that match `runOn`, so pinned tasks move as little as slots do on join/leave. An
 * unpinned task goes to the rendezvous owner of its slot (in a cluster, the leader's balanced
 * assignment decides slots instead: `balanceSlots`). Null means no live member matches (the leader
 * reports such tasks).
 */
export const ownerOf = (
  taskId: string,
  runOn: RunOn | undefined,
  slotCount: number,
  members: readonly Pick<Member, 'id' | 'weight' | 'labels'>[],
): string | null => {
  checkMembers(members);
  const slot = slotOf(taskId, slotCount);
  const candidates = isPinned(runOn) ? members.filter((member) => matchesRunOn(member, runOn)) : members;
  return rendezvousOwner(slot, candidates);
};

/**
 * Slots whose owner differs between two assignments, in slot order. A slot missing from one side (an
 * assignment with no members is `[]`) has no owner there, so it counts as moved when the other has one.
 */
export const movedSlots = (before: readonly string[], after: readonly string[]): number[] => {
  const moved: number[] = [];
  for (let slot = 0; slot < Math.max(before.length, after.length); slot++) {
    if (before[slot] !== after[slot]) moved.push(slot);
  }
  return moved;
};

/** How many slots each member holds, for every member id in `owners` (status pages, metrics, tests). */
export const slotCountsOf = (owners: readonly string[]): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
};
