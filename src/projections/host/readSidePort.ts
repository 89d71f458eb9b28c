import type { FeedFilter } from '../liveFeed.js';
import type { QueryArgs, QueryName, QueryResult } from '../queries/index.js';
import type { ReplayArgs, ReplayResult } from '../readSide.js';
import type { RebuildProgress } from '../rebuild.js';

export type FeedHandlers = {
  /**
   * Server-Sent Events text, one or more messages. `taken` is called once the chunk has left the node
   * (written to the subscriber's socket): the read side sends a feed at most its window ahead of that.
   */
  data(chunk: string, taken: () => void): void;
  /** The feed was ended by the read side, with why. */
  end(reason: string): void;
};

/**
 * The read side as the API uses it, wherever it runs: a child process of the node (a log in a file or
 * in EventStoreDB), or in the node's own process (an in-memory log, which no other process can read).
 */
export interface ReadSidePort {
  /** Runs a query once the live models include `minPosition` (the node's last write: read-your-writes). */
  query<N extends QueryName>(name: N, args: QueryArgs<N>, minPosition?: number): Promise<QueryResult<N>>;
  replay(args: ReplayArgs, onProgress?: (progress: RebuildProgress) => void): Promise<ReplayResult>;
  /** `windowBytes`: how far ahead of what the subscriber has taken the feed may be sent. */
  openFeed(after: number, filter: FeedFilter, handlers: FeedHandlers, windowBytes: number): { close(): void };
  /**
   * The node's load (`src/app/nodeLoad.ts`): while it is busy the read side yields the CPU (cpuClass.ts)
   * and commits larger batches (projector.ts), lagging rather than delaying a fire.
   */
  nodeBusy(busy: boolean): void;
  /**
   * Stops, after the live models have recorded the log up to `position` (the node's last append:
   * its `TaskReleased` on a graceful stop), waiting up to a few seconds for them.
   */
  close(position?: number): Promise<void>;
}
