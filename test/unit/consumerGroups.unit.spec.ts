import { describe, expect, it } from 'vitest';
import { ConsumerGroups, type GroupMember } from '../../src/targets/topic/consumerGroups.js';

const member = (group: string, topics: string[], consumerId = `${group}-1`): GroupMember => ({
  group,
  consumerId,
  topicSet: new Set(topics),
  deliveries: new Set(),
});

describe('ConsumerGroups', () => {
  it('expects a group that left within its grace, and forgets it after', () => {
    const groups = new ConsumerGroups(60_000);
    const m = member('billing', ['t']);
    groups.add(m);
    groups.remove(m, 1_000);
    expect(groups.expectedGroups('t', 30_000)).toEqual(['billing']);
    expect(groups.expectedGroups('t', 70_000)).toEqual([]);
  });

  it('does not grow with groups and topics that come and go', () => {
    const groups = new ConsumerGroups(60_000);
    for (let i = 0; i < 10_000; i++) {
      const m = member(`group-${i}`, [`topic-${i}`]);
      groups.add(m);
      groups.remove(m, i * 1_000);
    }
    // Only the groups that left within the last minute are remembered.
    expect(groups.remembered).toBeLessThanOrEqual(61);
    expect(groups.all()).toEqual([]);
  });

  it('a group that reconnects is live again, not in grace', () => {
    const groups = new ConsumerGroups(60_000);
    const first = member('audit', ['t']);
    groups.add(first);
    groups.remove(first, 0);
    groups.add(member('audit', ['t'], 'audit-2'));
    expect(groups.remembered).toBe(0);
    expect(groups.expectedGroups('t', 120_000)).toEqual(['audit']);
  });
});
