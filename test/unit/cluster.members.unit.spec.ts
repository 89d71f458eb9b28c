import { describe, expect, it } from 'vitest';
import { Member, assignSlots, isPinned, matchesRunOn, ownerOf, slotOf } from '../../domain/cluster/index.js';
import { RunOnSpec } from '../../domain/task/spec.js';

const member = (id: string, labels: Record<string, string> = {}, weight = 1): Member => ({ id, weight, labels });

describe('Member', () => {
  it('fills weight 1 and no labels by default', () => {
    expect(Member.parse({ id: 'node-1' })).toEqual({ id: 'node-1', weight: 1, labels: {} });
  });

  it('reads what a node writes into its member znode, and drops fields of newer versions', () => {
    const data = {
      id: 'node-2',
      address: 'http://10.0.0.2:8080',
      weight: 2.5,
      labels: { zone: 'a' },
      version: '0.2.0',
    };
    expect(Member.parse(JSON.parse(JSON.stringify({ ...data, future: true })))).toEqual(data);
  });

  it('rejects ids that cannot name a znode and weights that are not positive', () => {
    for (const id of ['', 'a/b', '.hidden', '..', 'x'.repeat(65)]) expect(Member.safeParse({ id }).success).toBe(false);
    for (const weight of [0, -1, Infinity, Number.NaN, '2']) {
      expect(Member.safeParse({ id: 'n', weight }).success).toBe(false);
    }
  });
});

describe('matchesRunOn', () => {
  const eu = member('eu-1', { region: 'eu', disk: 'ssd' });

  it('matches everyone when the task is not pinned', () => {
    expect(matchesRunOn(eu, undefined)).toBe(true);
    expect(matchesRunOn(eu, {})).toBe(true);
    // An empty list or object restricts nothing, as if absent.
    expect(matchesRunOn(eu, { nodes: [], labels: {} })).toBe(true);
    expect(isPinned({ nodes: [], labels: {} })).toBe(false);
  });

  it('matches by node id', () => {
    expect(matchesRunOn(eu, { nodes: ['eu-1', 'us-1'] })).toBe(true);
    expect(matchesRunOn(eu, { nodes: ['us-1'] })).toBe(false);
    expect(isPinned({ nodes: ['us-1'] })).toBe(true);
  });

  it('matches when every label is carried with the same value', () => {
    expect(matchesRunOn(eu, { labels: { region: 'eu' } })).toBe(true);
    expect(matchesRunOn(eu, { labels: { region: 'eu', disk: 'ssd' } })).toBe(true);
    expect(matchesRunOn(eu, { labels: { region: 'us' } })).toBe(false);
    expect(matchesRunOn(eu, { labels: { region: 'eu', gpu: 'yes' } })).toBe(false);
    // Inherited properties are not labels.
    expect(matchesRunOn(eu, { labels: { toString: 'x' } })).toBe(false);
  });

  it('requires both the node id and the labels when both are given', () => {
    expect(matchesRunOn(eu, { nodes: ['eu-1'], labels: { region: 'eu' } })).toBe(true);
    expect(matchesRunOn(eu, { nodes: ['eu-1'], labels: { region: 'us' } })).toBe(false);
    expect(matchesRunOn(eu, { nodes: ['us-1'], labels: { region: 'eu' } })).toBe(false);
  });

  it('accepts the runOn of a compiled task document', () => {
    const runOn = RunOnSpec.parse({ labels: { region: 'eu' } });
    expect(matchesRunOn(eu, runOn)).toBe(true);
  });
});

describe('ownerOf', () => {
  const members = [
    member('eu-1', { region: 'eu' }),
    member('eu-2', { region: 'eu' }),
    member('us-1', { region: 'us' }),
    member('us-2', { region: 'us', gpu: 'yes' }),
  ];
  const taskIds = Array.from({ length: 400 }, (_, i) => `task-${i}`);

  it('gives an unpinned task to the owner of its slot', () => {
    const owners = assignSlots(1024, members);
    for (const id of taskIds) expect(ownerOf(id, undefined, 1024, members)).toBe(owners[slotOf(id, 1024)]);
  });

  it('gives a task pinned to node ids to one of them, spread over them', () => {
    const held = new Map<string, number>();
    for (const id of taskIds) {
      const owner = ownerOf(id, { nodes: ['eu-2', 'us-1', 'gone'] }, 1024, members)!;
      expect(['eu-2', 'us-1']).toContain(owner);
      held.set(owner, (held.get(owner) ?? 0) + 1);
    }
    expect(held.get('eu-2')).toBeGreaterThan(150);
    expect(held.get('us-1')).toBeGreaterThan(150);
  });

  it('gives a task pinned to labels only to members carrying them', () => {
    for (const id of taskIds) {
      expect(['eu-1', 'eu-2']).toContain(ownerOf(id, { labels: { region: 'eu' } }, 1024, members));
      expect(ownerOf(id, { labels: { gpu: 'yes' } }, 1024, members)).toBe('us-2');
    }
  });

  it('keeps a pinned task on its slot owner whenever that owner is eligible', () => {
    const owners = assignSlots(1024, members);
    for (const id of taskIds) {
      const slotOwner = owners[slotOf(id, 1024)]!;
      const pinned = ownerOf(id, { labels: { region: 'eu' } }, 1024, members);
      if (slotOwner.startsWith('eu-')) expect(pinned).toBe(slotOwner);
    }
  });

  it('moves a pinned task only when its owner leaves', () => {
    const runOn = { labels: { region: 'us' } };
    const joined = [...members, member('us-3', { region: 'us' })];
    const left = members.filter((m) => m.id !== 'us-1');
    for (const id of taskIds) {
      const before = ownerOf(id, runOn, 1024, members);
      const afterJoin = ownerOf(id, runOn, 1024, joined);
      expect([before, 'us-3']).toContain(afterJoin);
      const afterLeave = ownerOf(id, runOn, 1024, left);
      if (before !== 'us-1') expect(afterLeave).toBe(before);
      else expect(afterLeave).toBe('us-2');
    }
  });

  it('is null when no live member may hold the task', () => {
    expect(ownerOf('task-1', { nodes: ['gone-1', 'gone-2'] }, 1024, members)).toBeNull();
    expect(ownerOf('task-1', { labels: { region: 'ap' } }, 1024, members)).toBeNull();
    expect(ownerOf('task-1', { nodes: ['eu-1'], labels: { region: 'us' } }, 1024, members)).toBeNull();
    expect(ownerOf('task-1', undefined, 1024, [])).toBeNull();
    expect(ownerOf('task-1', { nodes: ['eu-1'] }, 1024, [])).toBeNull();
  });
});
