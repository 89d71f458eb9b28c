import { describe, expect, it } from 'vitest';
import { assignSlots, balanceSlots, movedSlots, slotOf, type Candidate } from '../../domain/cluster/index.js';

const SLOTS = 1024;
const three: Candidate[] = [
  { id: 'node-1', weight: 1 },
  { id: 'node-2', weight: 1 },
  { id: 'node-3', weight: 1 },
];
const loadOf = (taskIds: readonly string[], slotCount = SLOTS): Uint32Array => {
  const load = new Uint32Array(slotCount);
  for (const id of taskIds) load[slotOf(id, slotCount)]!++;
  return load;
};
const tasksPerMember = (owners: readonly string[], load: ArrayLike<number>): Record<string, number> => {
  const out: Record<string, number> = {};
  owners.forEach((o, s) => (out[o] = (out[o] ?? 0) + (load[s] ?? 0)));
  return out;
};
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

describe('balanceSlots: slots by rendezvous, evened out by task count', () => {
  it('is exactly the rendezvous assignment while there are no tasks', () => {
    expect(balanceSlots({ slotCount: SLOTS, members: three, load: new Uint32Array(SLOTS) })).toEqual(
      assignSlots(SLOTS, three),
    );
  });

  it('shares 300 tasks among three members within 5% where hashing alone leaves them 15% apart', () => {
    const load = loadOf(ids('t', 300));
    const hashed = tasksPerMember(assignSlots(SLOTS, three), load);
    expect(Math.max(...Object.values(hashed)) - Math.min(...Object.values(hashed))).toBeGreaterThanOrEqual(20);
    const balanced = balanceSlots({ slotCount: SLOTS, members: three, load });
    for (const n of Object.values(tasksPerMember(balanced, load))) expect(Math.abs(n - 100)).toBeLessThanOrEqual(5);
    // Few slots moved to get there.
    expect(movedSlots(assignSlots(SLOTS, three), balanced).length).toBeLessThan(20);
  });

  it.each([
    ['job-', 300],
    ['invoice.', 1_000],
    ['x', 10_000],
  ])('keeps every member within tolerance for ids %s1..%s%i', (prefix, n) => {
    const load = loadOf(ids(prefix, n));
    const per = tasksPerMember(balanceSlots({ slotCount: SLOTS, members: three, load }), load);
    for (const count of Object.values(per))
      expect(Math.abs(count - n / 3)).toBeLessThanOrEqual(Math.max(0.5, 0.05 * (n / 3)));
  });

  it('honours weights: a member of weight 2 holds about twice the tasks', () => {
    const members = [...three.slice(0, 2), { id: 'node-3', weight: 2 }];
    const load = loadOf(ids('w', 2_000));
    const per = tasksPerMember(balanceSlots({ slotCount: SLOTS, members, load }), load);
    expect(Math.abs(per['node-3']! - 1_000)).toBeLessThanOrEqual(50);
    expect(Math.abs(per['node-1']! - 500)).toBeLessThanOrEqual(25);
  });

  it('is stable: balancing its own result again moves nothing, whatever the order of members', () => {
    const load = loadOf(ids('t', 300));
    const first = balanceSlots({ slotCount: SLOTS, members: three, load });
    expect(
      balanceSlots({
        slotCount: SLOTS,
        members: [...three].reverse(),
        load,
        previous: { members: three, owners: first },
      }),
    ).toEqual(first);
    // A few more tasks within tolerance move nothing either (no churn as tasks come and go).
    const more = loadOf([...ids('t', 300), 'extra-1', 'extra-2']);
    expect(
      movedSlots(
        first,
        balanceSlots({ slotCount: SLOTS, members: three, load: more, previous: { members: three, owners: first } }),
      ),
    ).toEqual([]);
  });

  it('on a join moves the slots rendezvous gives the newcomer plus a few to even out; on a leave, the leaver’s plus a few', () => {
    const load = loadOf(ids('t', 3_000));
    const before = balanceSlots({ slotCount: SLOTS, members: three, load });
    const four = [...three, { id: 'node-4', weight: 1 }];
    const joined = balanceSlots({
      slotCount: SLOTS,
      members: four,
      load,
      previous: { members: three, owners: before },
    });
    const rendezvousGain = movedSlots(assignSlots(SLOTS, three), assignSlots(SLOTS, four)).length;
    const moved = movedSlots(before, joined);
    expect(moved.length).toBeGreaterThanOrEqual(rendezvousGain * 0.9);
    expect(moved.length).toBeLessThan(rendezvousGain * 1.2);
    // Other members' slots move only past the sticky tolerance (10%): that is the bound after a change.
    for (const n of Object.values(tasksPerMember(joined, load))) expect(Math.abs(n - 750)).toBeLessThanOrEqual(75);

    const two = three.filter((m) => m.id !== 'node-2');
    const left = balanceSlots({ slotCount: SLOTS, members: two, load, previous: { members: three, owners: before } });
    const leaverSlots = before.filter((o) => o === 'node-2').length;
    const movedOnLeave = movedSlots(before, left);
    expect(movedOnLeave.length).toBeGreaterThanOrEqual(leaverSlots);
    expect(movedOnLeave.length).toBeLessThan(leaverSlots * 1.2);
    expect(left.every((o) => o !== 'node-2')).toBe(true);
    // The survivors keep every slot they had: the leaver's slots alone even the load out.
    for (const slot of movedOnLeave) expect(before[slot]).toBe('node-2');
    for (const n of Object.values(tasksPerMember(left, load))) expect(Math.abs(n - 1_500)).toBeLessThanOrEqual(150);
  });

  it('gives every slot an owner even with one member, and none with no member', () => {
    const load = loadOf(ids('t', 50));
    expect(new Set(balanceSlots({ slotCount: SLOTS, members: [three[0]!], load }))).toEqual(new Set(['node-1']));
    expect(balanceSlots({ slotCount: SLOTS, members: [], load })).toEqual([]);
  });
});
