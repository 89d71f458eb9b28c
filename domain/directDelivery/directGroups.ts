import { DirectGroupEvent } from './events.js';

/**
 * Which direct groups expect each topic's fires: the fold of `kairos-direct-groups`. Each topic's groups
 * are kept sorted (they appear in that order in `FirePublished.groups` and in outcome details), so a node
 * routing a fire reads them as they are.
 */
export type DirectGroups = ReadonlyMap<string, readonly string[]>;

export const noDirectGroups: DirectGroups = new Map();

export const evolveDirectGroups = (groups: DirectGroups, event: DirectGroupEvent): DirectGroups => {
  const { topic, group } = event.data;
  const current = groups.get(topic) ?? [];
  const declared = event.type === 'DirectGroupDeclared';
  if (current.includes(group) === declared) return groups;
  const next = declared ? [...current, group].sort() : current.filter((g) => g !== group);
  const all = new Map(groups);
  if (next.length === 0) all.delete(topic);
  else all.set(topic, next);
  return all;
};

export const groupsOfTopic = (groups: DirectGroups, topic: string): readonly string[] => groups.get(topic) ?? [];

/** The readable group events of a run of `kairos-direct-groups`; events that do not parse are passed over. */
export function* directGroupEventsOf(events: Iterable<{ type: string; data: unknown }>): Generator<DirectGroupEvent> {
  for (const { type, data } of events) {
    const parsed = DirectGroupEvent.safeParse({ type, data });
    if (parsed.success) yield parsed.data;
  }
}

/** The groups declared by a run of `kairos-direct-groups`. */
export const directGroupsOf = (events: Iterable<{ type: string; data: unknown }>): DirectGroups => {
  let groups = noDirectGroups;
  for (const event of directGroupEventsOf(events)) groups = evolveDirectGroups(groups, event);
  return groups;
};
