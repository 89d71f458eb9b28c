import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../src/clock/simulatedClock.js';
import type { FireDelivery, FireOutcome, OutcomeDetail } from '../../src/targets/dispatcher.js';
import { TopicHub, type DirectDeliveryPort } from '../../src/targets/topic/topicHub.js';

/** The hub's bookkeeping for direct groups, with a fake of the node's direct delivery and a simulated clock. */
const setup = () => {
  const clock = new SimulatedClock();
  const outcomes: FireOutcome[] = [];
  const hub = new TopicHub((o) => outcomes.push(o), { node: 'n1', clock, logger: { warn: () => {} } });
  const groups = new Map<string, string[]>();
  const known = new Map<string, OutcomeDetail>();
  const published: Array<{ fireId: string; groups: readonly string[] }> = [];
  const port: DirectDeliveryPort = {
    groupsOf: (topic) => groups.get(topic) ?? [],
    publish: (fire, _topic, to) => void published.push({ fireId: fire.fireId, groups: to }),
    knownOutcome: (fireId, attempt, group) => known.get(`${fireId}#${attempt}#${group}`),
  };
  hub.setDirect(port);
  let n = 0;
  const fire = (topic = 'exports'): FireDelivery => ({
    taskId: 't1',
    fireId: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
    attempt: 1,
    trigger: 'schedule',
    scheduledAt: new Date(clock.now()).toISOString(),
    firedAt: new Date(clock.now()).toISOString(),
    deadline: clock.now() + 10_000,
    payload: null,
    target: { topic },
    node: 'n1',
  });
  const answer = (f: FireDelivery, group: string, status: 'succeeded' | 'failed' = 'succeeded') =>
    hub.settleDirect({ fireId: f.fireId, attempt: f.attempt, group, consumer: 'c', status });
  return { clock, hub, outcomes, groups, known, published, fire, answer };
};

describe('topic hub, direct groups', () => {
  it('publishes once for all direct groups and settles when each answered', () => {
    const { hub, outcomes, groups, published, fire, answer } = setup();
    groups.set('exports', ['audit', 'billing']);
    const f = fire();
    hub.deliver(f);
    expect(published).toEqual([{ fireId: f.fireId, groups: ['audit', 'billing'] }]);
    answer(f, 'billing');
    expect(outcomes).toEqual([]);
    answer(f, 'billing', 'failed');
    answer(f, 'audit');
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]!.status).toBe('succeeded');
    expect(hub.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it('publishes only for groups whose outcome it does not know yet', () => {
    const { hub, outcomes, groups, known, published, fire, answer } = setup();
    groups.set('exports', ['audit', 'billing']);
    const f = fire();
    known.set(`${f.fireId}#1#billing`, { group: 'billing', consumer: 'gone', status: 'succeeded' });
    hub.deliver(f);
    expect(published).toEqual([{ fireId: f.fireId, groups: ['audit'] }]);
    answer(f, 'audit');
    expect(outcomes[0]!.details.map((d) => d.consumer)).toEqual(['c', 'gone']);
  });

  it('stops waiting for a retired group, and holds an attempt left with no group', () => {
    const { hub, outcomes, groups, fire, answer } = setup();
    groups.set('exports', ['audit', 'billing']);
    const a = fire();
    hub.deliver(a);
    answer(a, 'billing');
    groups.set('exports', ['billing']);
    hub.directGroupsChanged('exports');
    expect(outcomes.map((o) => o.fireId)).toEqual([a.fireId]);

    const b = fire();
    hub.deliver(b);
    groups.delete('exports');
    hub.directGroupsChanged('exports');
    expect(outcomes).toHaveLength(1);
    expect(hub.stats()).toMatchObject({ pending: 1, inFlight: 0 });
    groups.set('exports', ['reports']);
    hub.directGroupsChanged('exports');
    answer(b, 'reports');
    expect(outcomes.map((o) => o.fireId)).toEqual([a.fireId, b.fireId]);
  });

  it('ignores outcomes of unknown attempts, of groups not expected, and after the deadline', () => {
    const { clock, hub, outcomes, groups, fire, answer } = setup();
    groups.set('exports', ['billing']);
    const f = fire();
    answer(f, 'billing');
    hub.deliver(f);
    answer(f, 'audit');
    expect(outcomes).toEqual([]);
    clock.increment(10_000);
    answer(f, 'billing');
    expect(outcomes).toEqual([]);
    expect(hub.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it('never delivers to a connected consumer of a group declared direct', () => {
    const { hub, outcomes, groups, published, fire, answer } = setup();
    const sent: unknown[] = [];
    hub.attach(
      { group: 'billing', topics: ['exports'], consumerId: 'w' },
      { send: (m) => void sent.push(m), close: () => {} },
    );
    groups.set('exports', ['billing']);
    const f = fire();
    hub.deliver(f);
    expect(sent.filter((m) => (m as { type: string }).type === 'fire')).toEqual([]);
    expect(published).toHaveLength(1);
    answer(f, 'billing');
    expect(outcomes).toHaveLength(1);
  });
});
