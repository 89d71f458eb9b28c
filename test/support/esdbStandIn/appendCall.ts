// EventStoreDB protocol stand-in for tests (not EventStoreDB): Streams.Append, the unary append the client uses
// when it is given per-call credentials (BatchAppend otherwise), and what both appends share.
import type { sendUnaryData, ServerReadableStream } from '@grpc/grpc-js';
import { MAX_APPEND_SIZE, WRITE_TIMEOUT_MS, type StandInContext } from './context.js';
import {
  commitTimedOut,
  exceptionInHandler,
  maxAppendSizeExceeded,
  requiredMetadataPropertyMissing,
  type StandInError,
} from './errors.js';
import { ExpectedVersion, type AppendOutcome, type ProposedEvent } from './eventLog.js';
import { empty, type sharedPb, streamName, streamsPb } from './pb.js';
import { parseUuid, toInt64 } from './wire.js';

type AppendReq = InstanceType<typeof streamsPb.AppendReq>;
type AppendResp = InstanceType<typeof streamsPb.AppendResp>;

type ProposedMessage = {
  getId(): InstanceType<typeof sharedPb.UUID> | undefined;
  getMetadataMap(): { get(key: string): string | undefined };
  getData_asU8(): Uint8Array;
  getCustomMetadata_asU8(): Uint8Array;
};

/** A request the server cannot take: in .NET an exception thrown while reading it. */
export class Rejected extends Error {
  constructor(
    readonly reason: 'missing-metadata' | 'bad-request',
    message: string,
  ) {
    super(message);
  }
}

export const toProposedEvent = (m: ProposedMessage): ProposedEvent => {
  const type = m.getMetadataMap().get('type');
  const contentType = m.getMetadataMap().get('content-type');
  if (type === undefined || contentType === undefined)
    throw new Rejected(
      'missing-metadata',
      `The given key '${type === undefined ? 'type' : 'content-type'}' was not present`,
    );
  const id = parseUuid(m.getId());
  if (id === undefined) throw new Rejected('bad-request', 'Unrecognized Guid format.');
  return {
    id,
    type,
    // The server keeps only "is JSON": any other content type reads back as octet-stream.
    contentType: contentType === 'application/json' ? contentType : 'application/octet-stream',
    data: Buffer.from(m.getData_asU8()),
    metadata: Buffer.from(m.getCustomMetadata_asU8()),
  };
};

/**
 * Commits after the simulated latency. An append the request manager gives up on after its write timeout is
 * answered as timed out, and still lands afterwards, as on the real server: a timeout never means "not written".
 */
export const commit = (
  ctx: StandInContext,
  stream: string,
  expected: number,
  events: readonly ProposedEvent[],
): Promise<AppendOutcome | 'timeout'> => {
  let timer: NodeJS.Timeout | undefined;
  const written = ctx.latency().then(() => ctx.log.append(stream, expected, events));
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), WRITE_TIMEOUT_MS);
  });
  return Promise.race([written, timedOut]).finally(() => clearTimeout(timer));
};

export const expectedOf = (options: {
  hasAny(): boolean;
  hasNoStream(): boolean;
  hasStreamExists(): boolean;
}): number | undefined => {
  if (options.hasAny()) return ExpectedVersion.any;
  if (options.hasNoStream()) return ExpectedVersion.noStream;
  if (options.hasStreamExists()) return ExpectedVersion.streamExists;
  return undefined;
};

const appendResponse = (outcome: AppendOutcome, expected: number): AppendResp => {
  const response = new streamsPb.AppendResp();
  if (outcome.ok) {
    const success = new streamsPb.AppendResp.Success();
    if (outcome.lastRevision >= 0) success.setCurrentRevision(String(outcome.lastRevision));
    else success.setNoStream(empty());
    const position = new streamsPb.AppendResp.Position();
    position.setCommitPosition(String(outcome.position));
    position.setPreparePosition(String(outcome.position));
    success.setPosition(position);
    return response.setSuccess(success);
  }
  const wrong = new streamsPb.AppendResp.WrongExpectedVersion();
  if (outcome.currentRevision >= 0) wrong.setCurrentRevision(String(outcome.currentRevision));
  else wrong.setCurrentNoStream(empty());
  if (expected === ExpectedVersion.any) wrong.setExpectedAny(empty());
  else if (expected === ExpectedVersion.noStream) wrong.setExpectedNoStream(empty());
  else if (expected === ExpectedVersion.streamExists) wrong.setExpectedStreamExists(empty());
  else wrong.setExpectedRevision(String(expected));
  return response.setWrongExpectedVersion(wrong);
};

/** Streams.Append: one client stream per append, options first, then the events; the answer is unary. */
export const append =
  (ctx: StandInContext) =>
  (call: ServerReadableStream<AppendReq, AppendResp>, callback: sendUnaryData<AppendResp>): void => {
    let stream: string | undefined;
    let expected: number | undefined;
    const events: ProposedEvent[] = [];
    let size = 0;
    let failure: StandInError | undefined;
    call.on('data', (request: AppendReq) => {
      if (failure) return;
      try {
        const options = request.getOptions();
        if (options) {
          stream = streamName(options.getStreamIdentifier());
          expected = options.hasRevision() ? toInt64(options.getRevision()) : expectedOf(options);
          return;
        }
        const proposed = toProposedEvent(request.getProposedMessage() as ProposedMessage);
        size += proposed.data.length;
        if (size > MAX_APPEND_SIZE) failure = maxAppendSizeExceeded(MAX_APPEND_SIZE);
        events.push(proposed);
      } catch (e) {
        const rejected = e as Rejected;
        failure = rejected.reason === 'missing-metadata' ? requiredMetadataPropertyMissing() : exceptionInHandler();
      }
    });
    call.on('end', () => {
      if (failure) return callback(failure);
      if (!stream || expected === undefined) return callback(exceptionInHandler());
      const expectedVersion = expected;
      void commit(ctx, stream, expectedVersion, events).then((outcome) =>
        outcome === 'timeout' ? callback(commitTimedOut()) : callback(null, appendResponse(outcome, expectedVersion)),
      );
    });
  };
