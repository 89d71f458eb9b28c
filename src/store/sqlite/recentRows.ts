import { matchesPrefixes } from '../appendRules.js';
import type { EventRow } from './statements.js';

/** Rows kept for subscribers: two full group commits' worth. */
const KEPT_ROWS = 20_000;

/**
 * The rows this process committed last, so a subscriber that follows the log reads them from memory
 * instead of from the file. They cover the positions (after, last] without a gap: another process's
 * commit in between, or a truncation, starts them afresh.
 *
 * More than the last commit: at 10,000 fires/s a subscriber one commit behind (its page ran while the
 * next commit landed) read that commit from the file, and parsed it, on the thread that fires — which
 * made the node slower, the commits larger and the next subscriber page later again. Measured in
 * docs/benchmarks.md ("The node that stayed a second behind").
 */
export class RecentRows {
  #rows: EventRow[] = [];
  #after = 0n;

  /** The rows of a commit that began after position `before`. */
  add(before: bigint, rows: readonly EventRow[]): void {
    if (rows.length === 0) return;
    if (this.#rows.length === 0 || before !== this.#last()) {
      this.#rows = [...rows];
      this.#after = before;
      return;
    }
    // One by one: a spread of a very large commit would overflow the call stack.
    for (const row of rows) this.#rows.push(row);
    // Trimmed in steps of KEPT_ROWS, so the copy is paid once per KEPT_ROWS rows.
    if (this.#rows.length > 2 * KEPT_ROWS) {
      const drop = this.#rows.length - KEPT_ROWS;
      this.#after = (this.#rows[drop - 1] as EventRow).position;
      this.#rows = this.#rows.slice(drop);
    }
  }

  clear(): void {
    this.#rows = [];
  }

  /**
   * Up to `limit` rows in (after, upTo] of the streams matching `prefixes`, and the position the page
   * reaches; undefined when the range is not all held here.
   */
  page(
    after: bigint,
    upTo: bigint,
    limit: number,
    prefixes: readonly string[] | undefined,
  ): { rows: EventRow[]; through: bigint } | undefined {
    const rows = this.#rows;
    if (rows.length === 0 || after < this.#after || upTo > this.#last()) return undefined;
    const out: EventRow[] = [];
    for (let i = this.#firstAfter(after); i < rows.length && out.length < limit; i++) {
      const row = rows[i] as EventRow;
      if (row.position > upTo) break;
      if (matchesPrefixes(row.stream, prefixes)) out.push(row);
    }
    return { rows: out, through: out.length === limit ? (out[limit - 1] as EventRow).position : upTo };
  }

  #last(): bigint {
    return (this.#rows[this.#rows.length - 1] as EventRow).position;
  }

  /** The index of the first row past `after` (rows are in position order). */
  #firstAfter(after: bigint): number {
    let low = 0;
    let high = this.#rows.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.#rows[mid] as EventRow).position <= after) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
