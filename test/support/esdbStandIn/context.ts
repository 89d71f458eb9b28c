// EventStoreDB protocol stand-in for tests (not EventStoreDB): what every call handler shares.
import type { EventLog } from './eventLog.js';

export type StandInContext = {
  readonly log: EventLog;
  /** Waits the latency a test asked for before serving a request (0: no wait at all). */
  readonly latency: () => Promise<void>;
  /** Server-side streams still open (subscriptions, persistent-subscription consumers). */
  readonly openStreams: Set<object>;
};

/** The server's defaults: `MaxAppendSize` (1 MiB) and the write timeout of its request manager (2 s). */
export const MAX_APPEND_SIZE = 1_048_576;
export const WRITE_TIMEOUT_MS = 2_000;

/** Events a catch-up read of $all considers per page (the server's ReadBatchSize). */
export const READ_BATCH_SIZE = 32;
