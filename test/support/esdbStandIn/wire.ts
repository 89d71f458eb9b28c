// EventStoreDB protocol stand-in for tests (not EventStoreDB): conversions between the log's records and the
// protocol's messages, the server-side event filters, and writing to a call with backpressure.
import type { Writable } from 'node:stream';
import type { EventLog, LogPosition, StoredEvent } from './eventLog.js';
import { type sharedPb, streamIdentifier, streamsPb, uuid } from './pb.js';

type UuidMessage = InstanceType<typeof sharedPb.UUID>;

/** The fields a streams and a persistent-subscriptions RecordedEvent share. */
type RecordedEventMessage = {
  setId(value?: UuidMessage): unknown;
  setStreamIdentifier(value?: InstanceType<typeof sharedPb.StreamIdentifier>): unknown;
  setStreamRevision(value: string): unknown;
  setCommitPosition(value: string): unknown;
  setPreparePosition(value: string): unknown;
  getMetadataMap(): { set(key: string, value: string): unknown };
  setCustomMetadata(value: Uint8Array): unknown;
  setData(value: Uint8Array): unknown;
};

/** Fills a RecordedEvent as the server does since 22.6: the $all position is given for stream reads too. */
export const fillRecordedEvent = <T extends RecordedEventMessage>(message: T, e: StoredEvent): T => {
  message.setId(uuid(e.id));
  message.setStreamIdentifier(streamIdentifier(e.stream));
  message.setStreamRevision(String(e.revision));
  message.setCommitPosition(String(e.position));
  message.setPreparePosition(String(e.position));
  const metadata = message.getMetadataMap();
  metadata.set('type', e.type);
  metadata.set('content-type', e.contentType);
  metadata.set('created', String(e.created));
  message.setCustomMetadata(e.metadata);
  message.setData(e.data);
  return message;
};

/** A read or subscription answer carrying one event, its $all position given. */
export const eventResponse = (e: StoredEvent): InstanceType<typeof streamsPb.ReadResp> => {
  const event = new streamsPb.ReadResp.ReadEvent();
  event.setEvent(fillRecordedEvent(new streamsPb.ReadResp.ReadEvent.RecordedEvent(), e));
  event.setCommitPosition(String(e.position));
  return new streamsPb.ReadResp().setEvent(event);
};

const GUID = /^[{(]?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})[})]?$/i;

/**
 * A UUID message as the server parses it (a Guid: any case, hyphens or not), lower-case; the client always
 * sends the string form.
 */
export const parseUuid = (id: UuidMessage | undefined): string | undefined => {
  const match = GUID.exec(id?.getString() ?? '');
  return match ? match.slice(1).join('-').toLowerCase() : undefined;
};

/** An unsigned 64-bit field read as the server's `long`: 2^64 - 1 is -1. */
export const toInt64 = (value: string): number => Number(BigInt.asIntN(64, BigInt(value)));

/** A requested $all position; undefined when it falls inside a record, which the server refuses to read from. */
export const requestedPosition = (
  log: EventLog,
  position: InstanceType<typeof streamsPb.ReadReq.Options.Position>,
): LogPosition | undefined => {
  const requested = { commit: toInt64(position.getCommitPosition()), prepare: toInt64(position.getPreparePosition()) };
  return log.isReadablePosition(requested) ? requested : undefined;
};

export type EventFilter = (e: StoredEvent) => boolean;

const isPersistentSubscriptionOwnStream = (stream: string): boolean =>
  stream.startsWith('$persistentsubscription-$all::') && (stream.endsWith('-checkpoint') || stream.endsWith('-parked'));

/** Every filtered read of $all (and every persistent subscription to it) hides these two kinds of stream. */
export const defaultAllFilter: EventFilter = (e) => !isPersistentSubscriptionOwnStream(e.stream);

type FilterExpression = { getRegex(): string; getPrefixList(): string[] };

/** The server's stream-name or event-type filter on $all: a regex if one is given, else prefixes (ordinal). */
export const expressionFilter = (on: 'stream' | 'eventType', expression: FilterExpression): EventFilter => {
  const field = (e: StoredEvent): string => (on === 'stream' ? e.stream : e.type);
  const regex = expression.getRegex();
  if (regex) {
    const pattern = new RegExp(regex);
    return (e) => defaultAllFilter(e) && pattern.test(field(e));
  }
  const prefixes = expression.getPrefixList();
  return (e) => defaultAllFilter(e) && prefixes.some((prefix) => field(e).startsWith(prefix));
};

/** Resolves once the call can take more (or has ended); grpc-js buffers without bound otherwise. */
export const writeWithBackpressure = async (call: Writable, message: unknown): Promise<void> => {
  if (call.write(message)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('cancelled', done);
      call.off('close', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
    call.on('close', done);
  });
};
