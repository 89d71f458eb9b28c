import { Observable, type Subscriber } from 'rxjs';
import type { RecordedEvent } from './eventStore.js';

/**
 * Catch-up and live delivery as one loop over positions, shared by every adapter.
 *
 * A cursor only remembers `last`: every event with a position <= last has been considered. Whenever the
 * store may hold something newer (its own commit, another process's commit seen by polling) the cursor
 * reads the next page after `last` from the store itself. Catch-up and live are the same code path, so
 * there is no boundary where an event could be lost or delivered twice, and order is position order by
 * construction. Positions are assigned in commit order (see the adapters), so nothing can later appear
 * below a position the cursor has passed.
 */

export type CursorSource = {
  /** The newest position known to be committed and readable. */
  head(): bigint;
  /**
   * Matching events after `after`, up to `upTo` (inclusive), in position order, at most `limit`; and
   * `through`: the position up to which the page is complete (every matching event in (after, through]
   * is in it). A source may stop short of `upTo` to bound the work of one call (a rare prefix in a
   * long log); the cursor then asks again from `through`. `cached`: the page came from rows the
   * source holds in memory (its latest commits), so the next page costs no read either.
   */
  page(after: bigint, upTo: bigint, limit: number): { events: RecordedEvent[]; through: bigint; cached?: boolean };
};

/** Pages from memory one turn of the event loop may deliver before the cursor yields anyway. */
const CACHED_PAGES_PER_TURN = 16;

class PositionCursor {
  private last: bigint;
  // True while a delivery loop runs or waits between pages: a wake-up then has nothing to do, as the
  // loop re-reads the head before it stops. It also makes delivery non-reentrant when a consumer appends
  // from inside `next`.
  private running = false;
  private pendingPage: NodeJS.Immediate | undefined;

  constructor(
    private readonly source: CursorSource,
    private readonly subscriber: Subscriber<RecordedEvent>,
    after: bigint,
    private readonly pageSize: number,
  ) {
    this.last = after;
  }

  wake(): void {
    if (this.running || this.subscriber.closed) return;
    this.running = true;
    this.run();
  }

  stop(): void {
    if (this.pendingPage) clearImmediate(this.pendingPage);
    this.pendingPage = undefined;
    this.running = true;
  }

  complete(): void {
    this.stop();
    this.subscriber.complete();
  }

  private run(): void {
    let cachedPages = 0;
    try {
      for (;;) {
        if (this.subscriber.closed) return;
        const upTo = this.source.head();
        if (this.last >= upTo) {
          this.running = false;
          return;
        }
        const { events, through, cached = false } = this.source.page(this.last, upTo, this.pageSize);
        cachedPages = cached ? cachedPages + 1 : 0;
        for (const event of events) {
          if (this.subscriber.closed) return;
          this.last = event.position;
          this.subscriber.next(event);
        }
        // Filtered-out events up to `through` are passed too, so a rare prefix does not rescan them.
        if (through > this.last) this.last = through;
        // Live delivery, up to the head or through what the store still holds in memory, waits here
        // only after CACHED_PAGES_PER_TURN pages: a follower a commit or two behind that yielded per
        // page kept up only while the event loop turned fast, and at 10,000 fires/s it fell a second
        // behind and stayed there; the bound keeps a slow subscriber from holding the loop for long.
        if (this.last >= upTo || (cached && cachedPages < CACHED_PAGES_PER_TURN)) continue;
        // More to read from the store (a catch-up): let timers and I/O run before the next page, so a
        // long catch-up does not starve the process.
        this.pendingPage = setImmediate(() => {
          this.pendingPage = undefined;
          this.run();
        });
        return;
      }
    } catch (e) {
      this.stop();
      this.subscriber.error(e);
    }
  }
}

/** The live cursors of one store: it wakes them after each commit and completes them on close. */
export class CursorHub {
  private readonly cursors = new Set<PositionCursor>();

  constructor(
    private readonly pageSize: number,
    /** Told when the number of open subscriptions changes (the SQLite adapter polls only while there are some). */
    private readonly onCountChange: (count: number) => void = () => {},
  ) {}

  get size(): number {
    return this.cursors.size;
  }

  observe(after: bigint, source: CursorSource, isOpen: () => Error | undefined): Observable<RecordedEvent> {
    return new Observable<RecordedEvent>((subscriber) => {
      const closed = isOpen();
      if (closed) {
        subscriber.error(closed);
        return undefined;
      }
      const cursor = new PositionCursor(source, subscriber, after, this.pageSize);
      this.cursors.add(cursor);
      this.onCountChange(this.cursors.size);
      // Start after subscribe() returns, so a consumer holds its Subscription before the first event.
      queueMicrotask(() => cursor.wake());
      return () => {
        cursor.stop();
        if (this.cursors.delete(cursor)) this.onCountChange(this.cursors.size);
      };
    });
  }

  wakeAll(): void {
    for (const cursor of [...this.cursors]) cursor.wake();
  }

  completeAll(): void {
    for (const cursor of [...this.cursors]) cursor.complete();
  }
}
