import { DirectGroupEvent } from './events.js';

/** Which direct groups expect each topic's fires: the fold of `kairos-direct-groups`. */
export type DirectGroups = ReadonlyMap<string, ReadonlySet<string>>;

export const noDirectGroups: DirectGroups = new Map();

export const evolveDirectGroups = (groups: DirectGroups, event: DirectGroupEvent): DirectGroups => {
  const { topic, group } = event.data;
  const current = groups.get(topic);
  const declared = event.type === 'DirectGroupDeclared';
  if ((current?.has(group) ?? false) === declared) return groups;
  const next = new Set(current);
  if (declared) next.add(group);
  else next.delete(group);
  const all = new Map(groups);
  if (next.size === 0) all.delete(topic);
  else all.set(topic, next);
  return all;
};

/** Groups of `topic` in a stable order (it appears in `FirePublished.groups` and in outcome details). */
export const groupsOfTopic = (groups: DirectGroups, topic: string): string[] => [...(groups.get(topic) ?? [])].sort();

/** The groups declared by a run of `kairos-direct-groups`; events that do not parse are passed over. */
export const directGroupsOf = (events: Iterable<{ type: string; data: unknown }>): DirectGroups => {
  let groups = noDirectGroups;
  for (const { type, data } of events) {
    const parsed = DirectGroupEvent.safeParse({ type, data });
    if (parsed.success) groups = evolveDirectGroups(groups, parsed.data);
  }
  return groups;
};
