import { toIso } from '../time/instant.js';
import { movedSlots, slotCountsOf } from './assignment.js';
import { type ClusterEvent, type ClusterEventData, MAX_LISTED_TASKS } from './events.js';
import type { Member } from './members.js';

/** A member as last recorded in `kairos-cluster`. */
export type RecordedMember = ClusterEventData<'NodeJoined'>;

/** What `kairos-cluster` says about the cluster: the leader's memory of what it has already recorded. */
export type ClusterLogState = {
  leader: string | null;
  members: ReadonlyMap<string, RecordedMember>;
  unplaceable: { count: number; taskIds: readonly string[] };
};

export const emptyClusterLog: ClusterLogState = {
  leader: null,
  members: new Map(),
  unplaceable: { count: 0, taskIds: [] },
};

export const evolveCluster = (state: ClusterLogState, event: ClusterEvent): ClusterLogState => {
  switch (event.type) {
    case 'LeaderElected':
      return { ...state, leader: event.data.node };
    case 'NodeJoined':
      return { ...state, members: new Map(state.members).set(event.data.node, event.data) };
    case 'NodeLeft': {
      const members = new Map(state.members);
      members.delete(event.data.node);
      return { ...state, members };
    }
    case 'TasksUnplaceable':
      return { ...state, unplaceable: { count: event.data.count, taskIds: event.data.taskIds } };
    case 'SlotsMoved':
    case 'OrphanedLeaseRemoved':
      return state;
  }
};

/** What the leader sees now. */
export type ClusterObservation = {
  leader: string;
  members: readonly Member[];
  /** Pinned tasks that no live member matches. */
  unplaceable: readonly string[];
  now: number;
};

/**
 * The events that bring `kairos-cluster` up to date with what the leader sees: a new leader, members
 * that joined (or came back with other data) and left, and a changed set of unplaceable tasks. Nothing
 * when the record already matches. A new leader thus records what happened while nobody led (e.g. the
 * old leader's own departure), because it compares with the log, not with its own previous view. Slot
 * moves are recorded when the leader publishes an assignment (`slotMovesOf`).
 */
export const decideCluster = (state: ClusterLogState, observed: ClusterObservation): ClusterEvent[] => {
  const at = toIso(observed.now);
  const events: ClusterEvent[] = [];
  if (state.leader !== observed.leader)
    events.push({ type: 'LeaderElected', data: { v: 1, node: observed.leader, previous: state.leader, at } });

  const live = new Map(observed.members.map((m) => [m.id, recordOf(m, at)]));
  for (const id of [...state.members.keys()].sort()) {
    if (!live.has(id)) events.push({ type: 'NodeLeft', data: { v: 1, node: id, at } });
  }
  for (const [id, member] of [...live].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const recorded = state.members.get(id);
    if (!recorded || !sameMember(recorded, member)) events.push({ type: 'NodeJoined', data: member });
  }

  const unplaceable = [...observed.unplaceable].sort();
  const listed = unplaceable.slice(0, MAX_LISTED_TASKS);
  if (
    unplaceable.length !== state.unplaceable.count ||
    listed.length !== state.unplaceable.taskIds.length ||
    listed.some((id, i) => id !== state.unplaceable.taskIds[i])
  )
    events.push({ type: 'TasksUnplaceable', data: { v: 1, count: unplaceable.length, taskIds: listed, at } });
  return events;
};

const recordOf = (m: Member, at: string): RecordedMember => ({
  v: 1,
  node: m.id,
  ...(m.address === undefined ? {} : { address: m.address }),
  weight: m.weight,
  labels: m.labels,
  ...(m.version === undefined ? {} : { version: m.version }),
  at,
});

const sameMember = (a: RecordedMember, b: RecordedMember): boolean =>
  a.address === b.address &&
  a.weight === b.weight &&
  a.version === b.version &&
  JSON.stringify(Object.entries(a.labels).sort()) === JSON.stringify(Object.entries(b.labels).sort());

/**
 * What a new assignment moves, as recorded by `SlotsMoved`: how many slots changed owner, who gained and
 * lost how many, and the division after it. Null when nothing moved.
 */
export const slotMovesOf = (
  before: readonly (string | undefined)[],
  after: readonly string[],
  now: number,
): ClusterEventData<'SlotsMoved'> | null => {
  const moved = movedSlots(before as string[], after);
  if (moved.length === 0) return null;
  const gained: Record<string, number> = {};
  const lost: Record<string, number> = {};
  for (const slot of moved) {
    const from = before[slot];
    const to = after[slot];
    if (from !== undefined) lost[from] = (lost[from] ?? 0) + 1;
    if (to !== undefined) gained[to] = (gained[to] ?? 0) + 1;
  }
  return {
    v: 1,
    slotCount: after.length,
    moved: moved.length,
    gained,
    lost,
    slotsPerNode: Object.fromEntries(slotCountsOf(after)),
    at: toIso(now),
  };
};
