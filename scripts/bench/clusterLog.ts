import { CLUSTER_STREAM, taskIdOfStream } from '../../domain/task/events.js';
import type { EventStore } from '../../src/store/eventStore.js';

/** A first attempt of a scheduled tick (trigger `schedule` or `catch-up`): what "missed" and "twice" are about. */
export type Fire = { scheduledAt: number; firedAt: number; node: string; catchUp: boolean };

/** A `TaskAssigned`/`TaskReassigned`/`TaskReleased`, with its decision time. */
export type Ownership = { type: string; node: string; reason: string; at: number };

/** An event of `kairos-cluster` (the leader's record: `NodeLeft`, `SlotsMoved`, ...). */
export type ClusterFact = { type: string; data: Record<string, unknown>; at: number };

/**
 * The shared log as the cluster benchmark needs it, read incrementally from the store file (not
 * through a node, which may be down). Kept compact — a full run holds a few hundred thousand fires — and
 * without validation: the bench reads only fields it knows the nodes write.
 */
export class ClusterLog {
  /** Per task, its scheduled first-attempt fires in log order. */
  readonly fires = new Map<string, Fire[]>();
  readonly ownerships = new Map<string, Ownership[]>();
  readonly clusterFacts: ClusterFact[] = [];
  /** Events per type. */
  readonly counts = new Map<string, number>();
  /** Ticks the misfire policy dropped (`TaskMisfired` with action `dropped`). */
  dropped = 0;
  readonly #nodes = new Map<string, string>();
  #after = 0n;

  constructor(readonly store: EventStore) {}

  async sync(): Promise<this> {
    for (;;) {
      const page = await this.store.readAll({ after: this.#after, maxCount: 10_000 });
      for (const e of page) {
        this.counts.set(e.type, (this.counts.get(e.type) ?? 0) + 1);
        const d = e.data as Record<string, unknown>;
        if (e.stream === CLUSTER_STREAM)
          this.clusterFacts.push({ type: e.type, data: d, at: Date.parse(d['at'] as string) });
        const taskId = taskIdOfStream(e.stream);
        if (taskId === undefined) continue;
        if (e.type === 'TaskFired') {
          if (d['attempt'] !== 1 || (d['trigger'] !== 'schedule' && d['trigger'] !== 'catch-up')) continue;
          push(this.fires, taskId, {
            scheduledAt: Date.parse(d['scheduledAt'] as string),
            firedAt: Date.parse(d['firedAt'] as string),
            node: this.#intern(d['node'] as string),
            catchUp: d['trigger'] === 'catch-up',
          });
        } else if (e.type === 'TaskAssigned' || e.type === 'TaskReassigned' || e.type === 'TaskReleased') {
          push(this.ownerships, taskId, {
            type: e.type,
            node: this.#intern(d['node'] as string),
            reason: d['reason'] as string,
            at: Date.parse(d['at'] as string),
          });
        } else if (e.type === 'TaskMisfired' && d['action'] === 'dropped') {
          this.dropped += typeof d['count'] === 'number' ? d['count'] : 1;
        }
      }
      const last = page.at(-1);
      if (!last) return this;
      this.#after = last.position;
    }
  }

  /** The node that fired `taskId` last before `at`: its owner then. */
  ownerAt(taskId: string, at: number): string | undefined {
    const fires = this.fires.get(taskId) ?? [];
    for (let i = fires.length - 1; i >= 0; i--) if ((fires[i] as Fire).firedAt < at) return (fires[i] as Fire).node;
    return undefined;
  }

  /** The first fire of `taskId` decided after `at` by a node `which` accepts. */
  firstFireAfter(taskId: string, at: number, which: (node: string) => boolean): Fire | undefined {
    return this.fires.get(taskId)?.find((f) => f.firedAt >= at && which(f.node));
  }

  /** The first `kairos-cluster` event of `type` recorded at or after `at` that `which` accepts. */
  clusterFact(type: string, at: number, which: (data: Record<string, unknown>) => boolean = () => true) {
    return this.clusterFacts.find((f) => f.type === type && f.at >= at && which(f.data));
  }

  /** Ownership changes (`TaskReassigned`) recorded in `[from, to)`, per reason. */
  reassignedBetween(from: number, to: number): Record<string, number> {
    const reasons: Record<string, number> = {};
    for (const list of this.ownerships.values())
      for (const o of list)
        if (o.type === 'TaskReassigned' && o.at >= from && o.at < to) reasons[o.reason] = (reasons[o.reason] ?? 0) + 1;
    return reasons;
  }

  /** Fires decided in `[from, to)`, of the given tasks (all when absent). */
  firesBetween(from: number, to: number, taskIds?: readonly string[]): Fire[] {
    const lists = taskIds ? taskIds.map((id) => this.fires.get(id) ?? []) : [...this.fires.values()];
    return lists.flatMap((fires) => fires.filter((f) => f.firedAt >= from && f.firedAt < to));
  }

  /**
   * Ticks of every-`periodMs` tasks fired twice, and ticks missing between each task's first fire and
   * `through` (a task that stopped firing loses the rest of its ticks).
   */
  tickProblems(taskIds: readonly string[], periodMs: number, through: number): { duplicates: number; missed: number } {
    let duplicates = 0;
    let missed = 0;
    for (const id of taskIds) {
      const ticks = (this.fires.get(id) ?? []).map((f) => f.scheduledAt).sort((a, b) => a - b);
      if (ticks.length === 0) continue;
      for (let i = 1; i < ticks.length; i++) {
        const gap = (ticks[i] as number) - (ticks[i - 1] as number);
        if (gap === 0) duplicates++;
        else if (gap > periodMs) missed += Math.round(gap / periodMs) - 1;
      }
      const last = ticks.at(-1) as number;
      if (last + periodMs <= through) missed += Math.floor((through - last) / periodMs);
    }
    return { duplicates, missed };
  }

  #intern(node: string): string {
    const known = this.#nodes.get(node);
    if (known !== undefined) return known;
    this.#nodes.set(node, node);
    return node;
  }
}

const push = <T>(map: Map<string, T[]>, key: string, value: T): void => {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
};
