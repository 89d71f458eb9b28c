import { describe, expect, it } from 'vitest';
import {
  ClusterEvent,
  type ClusterLogState,
  type ClusterObservation,
  MAX_LISTED_TASKS,
  Member,
  assignSlots,
  decideCluster,
  emptyClusterLog,
  evolveCluster,
  movedSlots,
  slotMovesOf,
} from '../../domain/cluster/index.js';

const T0 = Date.UTC(2026, 10, 21, 8, 0, 0);
const member = (id: string, extra: Partial<Member> = {}): Member => Member.parse({ id, ...extra });
const observe = (overrides: Partial<ClusterObservation> = {}): ClusterObservation => ({
  leader: 'n1',
  members: [member('n1'), member('n2')],
  unplaceable: [],
  now: T0,
  ...overrides,
});
/** Decides, checks every event against its schema, and folds them in: one leader pass. */
const pass = (state: ClusterLogState, observed: ClusterObservation) => {
  const events = decideCluster(state, observed);
  for (const e of events) expect(ClusterEvent.parse(e)).toEqual(e);
  return { events, state: events.reduce(evolveCluster, state) };
};

describe('decideCluster: what the leader records in kairos-cluster', () => {
  it('records the first leader and every member', () => {
    const { events } = pass(emptyClusterLog, observe());
    expect(events.map((e) => e.type)).toEqual(['LeaderElected', 'NodeJoined', 'NodeJoined']);
    expect(events[0]!.data).toMatchObject({ node: 'n1', previous: null, at: new Date(T0).toISOString() });
    expect(events[1]!.data).toMatchObject({ node: 'n1', weight: 1, labels: {} });
  });

  it('records nothing when the log already says what the leader sees', () => {
    const { state } = pass(emptyClusterLog, observe());
    expect(decideCluster(state, observe({ now: T0 + 60_000 }))).toEqual([]);
  });

  it('slotMovesOf counts the slots an assignment moves, who gained and lost them, and the division after', () => {
    const two = [member('n1'), member('n2')];
    const three = [...two, member('n3')];
    const before = assignSlots(64, two);
    const after = assignSlots(64, three);
    const moves = slotMovesOf(before, after, T0)!;
    expect(ClusterEvent.parse({ type: 'SlotsMoved', data: moves })).toBeTruthy();
    const expected = movedSlots(before, after);
    expect(moves.moved).toBe(expected.length);
    expect(moves.gained).toEqual({ n3: expected.length });
    expect((moves.lost.n1 ?? 0) + (moves.lost.n2 ?? 0)).toBe(expected.length);
    expect(Object.values(moves.slotsPerNode).reduce((a, b) => a + b, 0)).toBe(64);
    expect(slotMovesOf(after, after, T0)).toBeNull();
    // A first assignment (nobody owned anything) counts every slot as gained.
    expect(slotMovesOf([], before, T0)).toMatchObject({ moved: 64, lost: {} });
  });

  it('a new leader records what happened while nobody led, including the old leader leaving', () => {
    const { state } = pass(emptyClusterLog, observe({ members: [member('n1'), member('n2'), member('n3')] }));
    const { events, state: after } = pass(state, observe({ leader: 'n2', members: [member('n2'), member('n3')] }));
    expect(events.map((e) => e.type)).toEqual(['LeaderElected', 'NodeLeft']);
    expect(events[0]!.data).toMatchObject({ node: 'n2', previous: 'n1' });
    expect(events[1]!.data).toMatchObject({ node: 'n1' });
    expect([...after.members.keys()].sort()).toEqual(['n2', 'n3']);
  });

  it('records a member that came back with another weight or labels as joined again', () => {
    const { state } = pass(emptyClusterLog, observe());
    const { events } = pass(state, observe({ members: [member('n1'), member('n2', { weight: 3 })] }));
    expect(events.map((e) => e.type)).toEqual(['NodeJoined']);
    expect(events[0]!.data).toMatchObject({ node: 'n2', weight: 3 });
    const relabelled = pass(state, observe({ members: [member('n1'), member('n2', { labels: { zone: 'b' } })] }));
    expect(relabelled.events).toMatchObject([{ type: 'NodeJoined', data: { node: 'n2', labels: { zone: 'b' } } }]);
  });

  it('records the set of unplaceable pinned tasks when it changes, clears it with an empty list, and caps the listing', () => {
    const { state } = pass(emptyClusterLog, observe());
    const stuck = pass(state, observe({ unplaceable: ['t-2', 't-1'] }));
    expect(stuck.events).toEqual([
      { type: 'TasksUnplaceable', data: { v: 1, count: 2, taskIds: ['t-1', 't-2'], at: new Date(T0).toISOString() } },
    ]);
    expect(decideCluster(stuck.state, observe({ unplaceable: ['t-1', 't-2'] }))).toEqual([]);
    const cleared = pass(stuck.state, observe());
    expect(cleared.events).toMatchObject([{ type: 'TasksUnplaceable', data: { count: 0, taskIds: [] } }]);
    const many = Array.from({ length: 250 }, (_, i) => `task-${String(i).padStart(3, '0')}`);
    const capped = pass(cleared.state, observe({ unplaceable: many }));
    expect(capped.events).toMatchObject([
      { type: 'TasksUnplaceable', data: { count: 250, taskIds: many.slice(0, MAX_LISTED_TASKS) } },
    ]);
  });

  it('rejects a malformed cluster event at the schema, naming the field', () => {
    const bad = ClusterEvent.safeParse({
      type: 'NodeJoined',
      data: { v: 1, node: 'a/b', weight: 1, labels: {}, at: 'x' },
    });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['data.at', 'data.node']);
  });
});
