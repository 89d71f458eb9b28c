import { ErrorCode, isKairosError, KairosError, type ErrorDetails } from '../../../domain/errors/index.js';
import type { FeedFilter } from '../liveFeed.js';
import type { ReadModelsOptions } from '../readModels.js';
import type { ReplayArgs } from '../readSide.js';
import type { RebuildProgress } from '../rebuild.js';

/** What the node tells its read-side process at start. */
export type HostInit = {
  /** The log's URL (`sqlite:…`, `esdb://…`): the process opens its own connection. */
  store: string;
  /** The read database file. */
  file: string;
  models: ReadModelsOptions;
  logLevel: string;
  nodeId: string;
};

export type WireError = { code: ErrorCode; message: string; details?: ErrorDetails };

/** An error as it crosses to another process or thread: a Kairos error keeps its code and details. */
export const wireErrorOf = (err: unknown): WireError =>
  isKairosError(err)
    ? err.toJSON()
    : { code: ErrorCode.internal, message: err instanceof Error ? err.message : String(err) };

/** The error again on the receiving side, as the API and the CLI report it. */
export const errorOfWire = (wire: WireError): KairosError => new KairosError(wire.code, wire.message, wire.details);

/** Node → read-side process. */
export type HostRequest =
  | { t: 'init'; init: HostInit }
  | { t: 'query'; id: number; name: string; args: unknown; minPosition: number }
  | { t: 'replay'; id: number; args: ReplayArgs }
  | { t: 'feed-open'; feed: number; after: number; filter: FeedFilter; windowBytes: number }
  | { t: 'feed-close'; feed: number }
  /** This much of the feed's data has left the node (to the subscriber's socket): more may be sent. */
  | { t: 'feed-ack'; feed: number; bytes: number }
  /** The node's load changed (ReadSidePort.nodeBusy). */
  | { t: 'node-busy'; busy: boolean }
  | { t: 'close'; position: number };

/** Read-side process → node. */
export type HostMessage =
  | { t: 'ready' }
  | { t: 'failed'; error: WireError }
  | { t: 'reply'; id: number; ok: true; value: unknown }
  | { t: 'reply'; id: number; ok: false; error: WireError }
  | { t: 'progress'; id: number; progress: RebuildProgress }
  | { t: 'feed-data'; feed: number; chunk: string }
  | { t: 'feed-end'; feed: number; reason: string };
