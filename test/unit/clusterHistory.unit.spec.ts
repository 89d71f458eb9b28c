import { describe, expect, it } from 'vitest';
import { decideCluster, emptyClusterLog, evolveCluster, slotMovesOf } from '../../domain/cluster/clusterLog.js';
import type { ClusterEvent } from '../../domain/cluster/events.js';
import { Member } from '../../domain/cluster/members.js';
import { clusterHistory } from '../../domain/projections/clusterHistory.js';
import { decide } from '../../domain/task/decide.js';
import { foldTask } from '../../domain/task/state.js';
import { toIso } from '../../domain/time/instant.js';
import { ProjectionSpec, life } from './support/projectionFixtures.js';
import { T0, spec } from './support/taskFixtures.js';

const S = 1_000;
const history = ProjectionSpec.for(clusterHistory());

/** What a leader records, as `ClusterHousekeeper` decides it: each observation against the log so far. */
const recorded = (...observations: Parameters<typeof decideCluster>[1][]): ClusterEvent[] => {
  let state = emptyClusterLog;
  return observations.flatMap((observed) => {
    const events = decideCluster(state, observed);
    state = events.reduce(evolveCluster, state);
    return events;
  });
};

describe('cluster history', () => {
  it('has an entry for every cluster event: leaders, members, unplaceable tasks, slot moves, orphaned leases', () => {
    const n1 = Member.parse({ id: 'n1', address: 'http://10.0.0.1:8080', labels: { zone: 'z1' }, version: '0.1.0' });
    const n2 = Member.parse({ id: 'n2', weight: 2 });
    const events: ClusterEvent[] = [
      ...recorded(
        { leader: 'n1', members: [n1], unplaceable: ['pinned'], now: T0 },
        { leader: 'n2', members: [n2], unplaceable: [], now: T0 + S },
      ),
      { type: 'SlotsMoved', data: slotMovesOf(['n1', 'n1', 'n1', 'n1'], ['n2', 'n2', 'n2', 'n2'], T0 + 2 * S)! },
      {
        type: 'OrphanedLeaseRemoved',
        data: { v: 1, lease: '/slots/3', session: '10000ad92910000', at: toIso(T0 + 3 * S) },
      },
    ];
    const none = { taskId: null, epoch: null, reason: null };
    history.given(events).then('entries', [
      { position: 1, at: T0, kind: 'leader-elected', node: 'n1', previousNode: null, details: {}, ...none },
      {
        position: 2,
        kind: 'node-joined',
        node: 'n1',
        previousNode: null,
        details: { address: 'http://10.0.0.1:8080', weight: 1, labels: { zone: 'z1' }, version: '0.1.0' },
        ...none,
      },
      { position: 3, kind: 'tasks-unplaceable', node: null, details: { count: 1, taskIds: ['pinned'] }, ...none },
      { position: 4, at: T0 + S, kind: 'leader-elected', node: 'n2', previousNode: 'n1', details: {} },
      { position: 5, kind: 'node-left', node: 'n1', details: {} },
      { position: 6, kind: 'node-joined', node: 'n2', details: { weight: 2, labels: {} } },
      { position: 7, kind: 'tasks-unplaceable', details: { count: 0, taskIds: [] } },
      {
        position: 8,
        at: T0 + 2 * S,
        kind: 'slots-moved',
        node: null,
        details: { slotCount: 4, moved: 4, gained: { n2: 4 }, lost: { n1: 4 }, slotsPerNode: { n2: 4 } },
        ...none,
      },
      {
        position: 9,
        at: T0 + 3 * S,
        kind: 'orphaned-lease-removed',
        node: null,
        previousNode: null,
        details: { lease: '/slots/3', session: '10000ad92910000' },
        ...none,
      },
    ]);
  });

  it('records every takeover of a task with its reason, and its release, and nothing else of the task', () => {
    const held = life(spec(), T0)
      .advance(T0 + S) // n1 records itself: assigned, start
      .succeed(T0 + S + 10)
      .advance(T0 + 2 * S, { node: 'n2', epoch: 9, reason: 'node-lost' })
      .succeed(T0 + 2 * S + 10).events;
    const released = [
      ...held,
      ...decide(
        { type: 'ReleaseTask', now: T0 + 3 * S, lease: { node: 'n2', epoch: 9 }, reason: 'shutdown' },
        foldTask('t1', held),
      ),
    ];
    const handedOver = [
      ...released,
      ...decide({ type: 'Advance', now: T0 + 4 * S, lease: { node: 'n3', epoch: 11 } }, foldTask('t1', released)),
    ];
    history.given(handedOver).then('entries', [
      {
        position: 2,
        at: T0 + S,
        kind: 'task-assigned',
        taskId: 't1',
        node: 'n1',
        previousNode: null,
        epoch: 7,
        reason: 'start',
        details: {},
      },
      {
        position: 5,
        at: T0 + 2 * S,
        kind: 'task-reassigned',
        node: 'n2',
        previousNode: 'n1',
        epoch: 9,
        reason: 'node-lost',
        details: { previousEpoch: 7 },
      },
      {
        position: 8,
        at: T0 + 3 * S,
        kind: 'task-released',
        node: 'n2',
        previousNode: null,
        epoch: 9,
        reason: 'shutdown',
        details: {},
      },
      {
        position: 9,
        at: T0 + 4 * S,
        kind: 'task-reassigned',
        node: 'n3',
        previousNode: 'n2',
        epoch: 11,
        reason: 'drain',
        details: { previousEpoch: 9 },
      },
    ]);
  });

  it('reads the task streams and the cluster stream alike, in log order', () => {
    const [leader] = recorded({ leader: 'n1', members: [], unplaceable: [], now: T0 });
    const rows = history
      .given([...life(spec(), T0).advance(T0 + S).events, leader!])
      .rows()
      .entries.values();
    expect([...rows].map((r) => [r.position, r.kind])).toEqual([
      [2, 'task-assigned'],
      [4, 'leader-elected'],
    ]);
  });
});
