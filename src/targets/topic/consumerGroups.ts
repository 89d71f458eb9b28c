/** What the registry needs to know of a connected consumer. */
export type GroupMember = {
  group: string;
  consumerId: string;
  topicSet: ReadonlySet<string>;
  /** Deliveries it holds: its load, for least-busy selection. */
  deliveries: { readonly size: number };
};

/**
 * The live consumers of each group, and the memory of groups that recently had one. Answers the two
 * questions a topic fire asks: which groups expect it, and which consumer of a group should get it.
 */
export class ConsumerGroups<M extends GroupMember> {
  readonly #members = new Map<string, M[]>();
  readonly #cursor = new Map<string, number>();
  /** topic → group → when its last consumer of that topic left. */
  readonly #lastSeen = new Map<string, Map<string, number>>();

  constructor(private readonly groupGrace: number) {}

  add(member: M): void {
    this.#members.set(member.group, [...(this.#members.get(member.group) ?? []), member]);
    // Live again for these topics: no longer a group in grace.
    for (const topic of member.topicSet) this.#forget(topic, member.group);
  }

  /** Removes a member; a topic it was the group's last consumer of remembers the group from `now`. */
  remove(member: M, now: number): void {
    const rest = (this.#members.get(member.group) ?? []).filter((m) => m !== member);
    if (rest.length > 0) this.#members.set(member.group, rest);
    else {
      this.#members.delete(member.group);
      this.#cursor.delete(member.group);
    }
    for (const topic of member.topicSet) {
      if (rest.some((m) => m.topicSet.has(topic))) continue;
      const seen = this.#lastSeen.get(topic) ?? new Map<string, number>();
      this.#lastSeen.set(topic, seen.set(member.group, now));
    }
    // Groups and topics come and go (a group per process, say): drop what is past its grace.
    for (const [topic, seen] of this.#lastSeen) {
      for (const [group, at] of seen) if (now - at > this.groupGrace) this.#forget(topic, group);
    }
  }

  #forget(topic: string, group: string): void {
    const seen = this.#lastSeen.get(topic);
    seen?.delete(group);
    if (seen?.size === 0) this.#lastSeen.delete(topic);
  }

  /** Topics with groups still in grace, for tests: what the hub remembers of consumers that left. */
  get remembered(): number {
    let n = 0;
    for (const seen of this.#lastSeen.values()) n += seen.size;
    return n;
  }

  find(group: string, consumerId: string): M | undefined {
    return this.#members.get(group)?.find((m) => m.consumerId === consumerId);
  }

  all(): M[] {
    return [...this.#members.values()].flat();
  }

  countByGroup(): Record<string, number> {
    return Object.fromEntries([...this.#members].map(([group, members]) => [group, members.length]));
  }

  clear(): void {
    this.#members.clear();
  }

  /**
   * Groups with a live consumer of the topic, plus groups whose consumers of it left within the grace
   * period: those are most likely reconnecting, and would otherwise miss the fire.
   */
  expectedGroups(topic: string, now: number): string[] {
    const groups = new Set<string>();
    for (const [group, members] of this.#members) if (members.some((m) => m.topicSet.has(topic))) groups.add(group);
    const seen = this.#lastSeen.get(topic);
    for (const [group, at] of seen ?? []) {
      if (now - at <= this.groupGrace) groups.add(group);
      else seen?.delete(group);
    }
    return [...groups].sort();
  }

  /** The least busy live consumer of the group for the topic; a rotating start spreads work among equals. */
  pick(group: string, topic: string, exclude: (member: M) => boolean): M | undefined {
    const members = this.#members.get(group) ?? [];
    const start = this.#cursor.get(group) ?? 0;
    let best: M | undefined;
    let bestIndex = 0;
    for (let i = 0; i < members.length; i++) {
      const index = (start + i) % members.length;
      const member = members[index]!;
      if (!member.topicSet.has(topic) || exclude(member)) continue;
      if (!best || member.deliveries.size < best.deliveries.size) [best, bestIndex] = [member, index];
    }
    if (best) this.#cursor.set(group, bestIndex + 1);
    return best;
  }
}
