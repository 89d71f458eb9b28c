// EventStoreDB protocol stand-in for tests (not EventStoreDB): the error statuses the server sends, with the
// `exception` trailer the client maps to its typed errors (see the client's utils/CommandError.js).
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';

export type StandInError = Pick<ServiceError, 'code' | 'details' | 'metadata'> & { message: string };

const rpcError = (code: status, details: string, trailers: Record<string, string> = {}): StandInError => {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(trailers)) metadata.set(key, value);
  return { code, details, metadata, message: `${code} ${status[code]}: ${details}` };
};

export const persistentSubscriptionExists = (stream: string, group: string): StandInError =>
  rpcError(status.ALREADY_EXISTS, `Subscription group ${group} on stream ${stream} exists.`, {
    exception: 'persistent-subscription-exists',
    'stream-name': stream,
    'group-name': group,
  });

export const persistentSubscriptionDoesNotExist = (stream: string, group: string): StandInError =>
  rpcError(status.NOT_FOUND, `Subscription group ${group} on stream ${stream} does not exist.`, {
    exception: 'persistent-subscription-does-not-exist',
    'stream-name': stream,
    'group-name': group,
  });

export const maximumSubscribersReached = (stream: string, group: string): StandInError =>
  rpcError(
    status.FAILED_PRECONDITION,
    `Maximum subscriptions reached for subscription group ${group} on stream ${stream}.`,
    { exception: 'maximum-subscribers-reached', 'stream-name': stream, 'group-name': group },
  );

export const persistentSubscriptionDropped = (stream: string, group: string): StandInError =>
  rpcError(status.CANCELLED, `Subscription group ${group} on stream ${stream} was dropped.`, {
    exception: 'persistent-subscription-dropped',
    'stream-name': stream,
    'group-name': group,
  });

export const maxAppendSizeExceeded = (maxAppendSize: number): StandInError =>
  rpcError(status.INVALID_ARGUMENT, `Maximum Append Size of ${maxAppendSize} Exceeded.`, {
    exception: 'maximum-append-size-exceeded',
    'maximum-append-size': String(maxAppendSize),
  });

export const requiredMetadataPropertyMissing = (): StandInError =>
  rpcError(status.INVALID_ARGUMENT, "Required Metadata Property 'type' is missing", {
    exception: 'missing-required-metadata-property',
    'required-metadata-properties': 'type,content-type',
  });

export const invalidPosition = (): StandInError =>
  rpcError(status.INVALID_ARGUMENT, 'Trying to read from an invalid position.');

/** What grpc-dotnet answers when a handler throws: how the server meets a request it cannot parse. */
export const exceptionInHandler = (): StandInError => rpcError(status.UNKNOWN, 'Exception was thrown by handler.');

/** The request manager gave up waiting for the write (it may still land). */
export const commitTimedOut = (): StandInError => rpcError(status.ABORTED, 'Operation timed out: Commit timeout');

/** What the stand-in deliberately leaves out answers like a server without that feature. */
export const notImplemented = (what: string): StandInError =>
  rpcError(status.UNIMPLEMENTED, `${what} is not implemented by the EventStoreDB stand-in`);
