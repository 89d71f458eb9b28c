import { z } from 'zod';

/** A node id: also the name of its `members/<nodeId>` znode, hence no "/" and no leading ".". */
export const NodeId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-"');

/**
 * A live cluster member, as a node writes it into its ephemeral `members/<nodeId>` znode (design §4).
 * Unknown fields are dropped rather than rejected, so a node can read the member data of a newer version.
 */
export const Member = z.object({
  id: NodeId,
  /** Where the node's API listens, e.g. `http://10.0.0.5:8080`. */
  address: z.string().min(1).optional(),
  /** Relative capacity: a member of weight 2 holds about twice the slots of a member of weight 1. */
  weight: z.number().positive('must be a positive number').default(1),
  /** Matched by tasks' `runOn.labels`. */
  labels: z.record(z.string(), z.string()).default({}),
  /** Kairos version of the node. */
  version: z.string().min(1).optional(),
});
export type Member = z.output<typeof Member>;
export type MemberInput = z.input<typeof Member>;

/** Where a task may run (`runOn` in the task document). */
export type RunOn = { nodes?: readonly string[] | undefined; labels?: Readonly<Record<string, string>> | undefined };

/**
 * Whether a task is restricted to some members. An empty `nodes` list or empty `labels` object restricts
 * nothing, exactly as if it were absent: "pinned to no node" is not a placement (pause the task instead).
 */
export const isPinned = (runOn: RunOn | undefined): boolean =>
  (runOn?.nodes?.length ?? 0) > 0 || Object.keys(runOn?.labels ?? {}).length > 0;

/**
 * Whether `member` may hold a task with this `runOn`: its id is one of `runOn.nodes` (when given) AND it
 * carries every `runOn.labels` key with the same value (when given).
 */
export const matchesRunOn = (member: Pick<Member, 'id' | 'labels'>, runOn: RunOn | undefined): boolean => {
  const nodes = runOn?.nodes ?? [];
  if (nodes.length > 0 && !nodes.includes(member.id)) return false;
  return Object.entries(runOn?.labels ?? {}).every(
    ([key, value]) => Object.hasOwn(member.labels, key) && member.labels[key] === value,
  );
};
