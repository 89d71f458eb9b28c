/**
 * A binary min-heap of (time, key) in two parallel arrays (no object per entry: a node holds a
 * million). Entries are not removed from the middle: the timer queue drops replaced ones lazily.
 */
export class TimeHeap {
  #at: number[] = [];
  #key: string[] = [];

  get size(): number {
    return this.#at.length;
  }

  /** Earliest time, or undefined when empty. */
  get topAt(): number | undefined {
    return this.#at[0];
  }

  get topKey(): string | undefined {
    return this.#key[0];
  }

  clear(): void {
    this.#at = [];
    this.#key = [];
  }

  push(at: number, key: string): void {
    const ats = this.#at;
    const keys = this.#key;
    let i = ats.length;
    ats.push(at);
    keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((ats[parent] as number) <= at) break;
      ats[i] = ats[parent] as number;
      keys[i] = keys[parent] as string;
      i = parent;
    }
    ats[i] = at;
    keys[i] = key;
  }

  /** Removes the earliest entry and returns its key; call only when not empty. */
  pop(): string {
    const ats = this.#at;
    const keys = this.#key;
    const top = keys[0] as string;
    const lastAt = ats.pop() as number;
    const lastKey = keys.pop() as string;
    const n = ats.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (ats[r] as number) < (ats[l] as number) ? r : l;
        if ((ats[c] as number) >= lastAt) break;
        ats[i] = ats[c] as number;
        keys[i] = keys[c] as string;
        i = c;
      }
      ats[i] = lastAt;
      keys[i] = lastKey;
    }
    return top;
  }
}
