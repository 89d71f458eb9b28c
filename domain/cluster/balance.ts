import { assignSlots, type Candidate } from './assignment.js';
import { checkSlotCount } from './slots.js';

/** The assignment in force: who owned each slot, and the members it was computed for. */
export type PublishedAssignment = { members: readonly Candidate[]; owners: readonly string[] };

export type BalanceInput = {
  slotCount: number;
  /** The live members, with their weights. */
  members: readonly Candidate[];
  /** Tasks in each slot (index = slot); pinned tasks do not count, they have leases of their own. */
  load: ArrayLike<number>;
  /** The assignment in force, if any: its balancing moves are kept where membership allows. */
  previous?: PublishedAssignment | null;
  /** How far above or below its fair share of tasks a member may be, as a fraction of that share. @default 0.05 */
  tolerance?: number;
  /**
   * The same for moving a slot that would otherwise stay where it is (at least 2 tasks): slots that move
   * anyway (a departed member's, a newcomer's) are used first, so a membership change does not shuffle
   * the others' tasks for a task or two of balance. @default 0.1
   */
  stickyTolerance?: number;
};

/**
 * The owner of every slot, balanced by task count: rendezvous hashing gives each member its share of
 * slots, but a few hundred tasks hashed into slots land unevenly (with 300 tasks on 3 equal members one
 * of them is off by more than 15% about one time in five). So:
 *
 * 1. Start sticky: each slot keeps its previous owner while that owner is live and the membership change
 *    does not hand the slot to someone else by rendezvous; otherwise it goes to its rendezvous owner. A
 *    join thus moves exactly the slots rendezvous gives the newcomer, a leave only the leaver's.
 * 2. Then, while some member is more than `tolerance` of its share (task count × weight / total weight,
 *    at least half a task) above or below it, move the slot that best closes the gap from the most
 *    loaded member to the least loaded one — only moves that strictly reduce the imbalance, so it ends.
 *    Slots that move anyway are preferred; another slot moves only past `stickyTolerance`.
 *
 * Deterministic (ties go to the lower slot and the smaller id), so any node can check a result.
 */
export const balanceSlots = (input: BalanceInput): string[] => {
  const { slotCount, members, load, previous } = input;
  checkSlotCount(slotCount);
  const owners = assignSlots(slotCount, members);
  if (members.length === 0) return owners;
  const live = new Set(members.map((m) => m.id));
  // Slots that change owner anyway; without a previous assignment, all of them.
  const moving = new Array<boolean>(slotCount).fill(true);
  if (previous && previous.owners.length === slotCount) {
    const before = assignSlots(
      slotCount,
      previous.members.filter((m) => live.has(m.id)),
    );
    for (let slot = 0; slot < slotCount; slot++) {
      const kept = previous.owners[slot];
      if (kept !== undefined && live.has(kept) && before[slot] === owners[slot]) {
        owners[slot] = kept;
        moving[slot] = false;
      }
    }
  }
  return evenOut(owners, moving, members, load, {
    loose: input.tolerance ?? 0.05,
    sticky: input.stickyTolerance ?? 0.1,
  });
};

const evenOut = (
  owners: string[],
  moving: readonly boolean[],
  members: readonly Candidate[],
  load: ArrayLike<number>,
  tolerance: { loose: number; sticky: number },
): string[] => {
  const total = Array.from({ length: owners.length }, (_, s) => load[s] ?? 0).reduce((a, b) => a + b, 0);
  if (total === 0 || members.length < 2) return owners;
  const weight = members.reduce((a, m) => a + m.weight, 0);
  const ids = members.map((m) => m.id).sort();
  const target = new Map(members.map((m) => [m.id, (total * m.weight) / weight]));
  const slack = (id: string) => Math.max(0.5, tolerance.loose * target.get(id)!);
  const stickySlack = (id: string) => Math.max(2, tolerance.sticky * target.get(id)!);
  const held = new Map(ids.map((id) => [id, 0]));
  owners.forEach((owner, slot) => held.set(owner, held.get(owner)! + (load[slot] ?? 0)));
  const gap = (id: string): number => held.get(id)! - target.get(id)!;

  for (let moves = 0; moves < owners.length; moves++) {
    let over = ids[0]!;
    let under = ids[0]!;
    for (const id of ids) {
      if (gap(id) > gap(over)) over = id;
      if (gap(id) < gap(under)) under = id;
    }
    const excess = gap(over);
    const deficit = -gap(under);
    if (excess <= slack(over) && deficit <= slack(under)) break;
    // The slot whose move leaves the two members nearest their shares, if that is nearer than now:
    // among the slots moving anyway first, among all only when the gap is past the sticky tolerance.
    const bestOf = (allowed: (slot: number) => boolean): number => {
      let best = -1;
      let bestCost = excess + deficit;
      for (let slot = 0; slot < owners.length; slot++) {
        const l = load[slot] ?? 0;
        if (owners[slot] !== over || l === 0 || !allowed(slot)) continue;
        const cost = Math.abs(excess - l) + Math.abs(deficit - l);
        if (cost < bestCost) [best, bestCost] = [slot, cost];
      }
      return best;
    };
    let best = bestOf((slot) => moving[slot]!);
    if (best === -1 && (excess > stickySlack(over) || deficit > stickySlack(under))) best = bestOf(() => true);
    if (best === -1) break;
    owners[best] = under;
    held.set(over, held.get(over)! - (load[best] ?? 0));
    held.set(under, held.get(under)! + (load[best] ?? 0));
  }
  return owners;
};
