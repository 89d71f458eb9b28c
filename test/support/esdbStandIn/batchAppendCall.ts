// EventStoreDB protocol stand-in for tests (not EventStoreDB): Streams.BatchAppend, how the client's
// appendToStream writes whenever the server lists the call (and no per-call credentials are given).
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { commit, expectedOf, Rejected, toProposedEvent } from './appendCall.js';
import { MAX_APPEND_SIZE, WRITE_TIMEOUT_MS, type StandInContext } from './context.js';
import { ExpectedVersion, type AppendOutcome, type ProposedEvent } from './eventLog.js';
import { anyPb, codePb, googleEmpty, sharedPb, statusPb, streamIdentifier, streamName, streamsPb } from './pb.js';
import { parseUuid, toInt64 } from './wire.js';

type BatchAppendReq = InstanceType<typeof streamsPb.BatchAppendReq>;
type BatchAppendResp = InstanceType<typeof streamsPb.BatchAppendResp>;

/** The event's size as the batch-append size limit counts it. */
const sizeOnDisk = (e: ProposedEvent): number => e.data.length + e.metadata.length + e.type.length * 2;

/** BatchAppend answers failures in-band: a google.rpc.Status whose details the client unpacks by type name. */
const rpcStatus = (code: codePb.Code, message: string, details: { serializeBinary(): Uint8Array }, name: string) => {
  const packed = new anyPb.Any();
  packed.pack(details.serializeBinary(), `event_store.client.${name}`);
  const result = new statusPb.Status();
  result.setCode(code);
  result.setMessage(message);
  result.setDetails(packed);
  return result;
};

const wrongExpectedVersionStatus = (current: number, expected: number) => {
  const wrong = new sharedPb.WrongExpectedVersion();
  if (current >= 0) wrong.setCurrentStreamRevision(String(current));
  else wrong.setCurrentNoStream(googleEmpty());
  if (expected === ExpectedVersion.any) wrong.setExpectedAny(googleEmpty());
  else if (expected === ExpectedVersion.noStream) wrong.setExpectedNoStream(googleEmpty());
  else if (expected === ExpectedVersion.streamExists) wrong.setExpectedStreamExists(googleEmpty());
  else wrong.setExpectedStreamPosition(String(expected));
  return rpcStatus(codePb.Code.ALREADY_EXISTS, 'WrongExpectedVersion', wrong, 'WrongExpectedVersion');
};

const timeoutStatus = () => rpcStatus(codePb.Code.DEADLINE_EXCEEDED, 'Timeout', new sharedPb.Timeout(), 'Timeout');

const badRequestStatus = (message: string) =>
  rpcStatus(codePb.Code.INVALID_ARGUMENT, 'BadRequest', new sharedPb.BadRequest().setMessage(message), 'BadRequest');

type PendingWrite = {
  readonly stream: string;
  readonly expected: number;
  readonly events: ProposedEvent[];
  size: number;
  readonly timer: NodeJS.Timeout;
};

/**
 * Streams.BatchAppend: one long-lived bidirectional stream per client carrying many appends, each a run of
 * requests sharing a correlation id (options on the first, `isFinal` on the last), answered by correlation id
 * in whatever order they complete. This is what makes the client's appends pipelined.
 */
export const batchAppend =
  (ctx: StandInContext) =>
  (call: ServerDuplexStream<BatchAppendReq, BatchAppendResp>): void => {
    const pending = new Map<string, PendingWrite>();
    let inProgress = 0;
    let clientDone = false;
    const respond = (
      correlation: InstanceType<typeof sharedPb.UUID> | undefined,
      stream: string,
      fill: (response: BatchAppendResp) => void,
    ): void => {
      if (call.cancelled || call.writableEnded) return;
      const response = new streamsPb.BatchAppendResp();
      response.setCorrelationId(correlation);
      response.setStreamIdentifier(streamIdentifier(stream));
      fill(response);
      call.write(response);
    };
    const endIfDone = (): void => {
      if (clientDone && inProgress === 0 && !call.writableEnded) call.end();
    };

    call.on('data', (request: BatchAppendReq) => {
      const correlation = request.getCorrelationId();
      const key = parseUuid(correlation) ?? '';
      const options = request.getOptions();
      let stream = options ? streamName(options.getStreamIdentifier()) : (pending.get(key)?.stream ?? '');
      try {
        if (options) {
          const deadline = options.getDeadline()?.toDate().getTime() ?? Number.POSITIVE_INFINITY;
          const timeout = Math.min(deadline - Date.now(), WRITE_TIMEOUT_MS);
          if (timeout <= 0) return respond(correlation, stream, (r) => r.setError(timeoutStatus()));
          if (!stream) throw new Rejected('bad-request', 'Value cannot be null or empty. (Parameter eventStreamId)');
          const expected = options.hasStreamPosition() ? toInt64(options.getStreamPosition()) : expectedOf(options);
          if (expected === undefined) throw new Rejected('bad-request', 'no expected stream position');
          if (!pending.has(key)) {
            // An append whose last part does not arrive in time is answered as timed out, never written.
            const timer = setTimeout(() => {
              if (pending.delete(key)) respond(correlation, stream, (r) => r.setError(timeoutStatus()));
            }, timeout);
            pending.set(key, { stream, expected, events: [], size: 0, timer });
          }
        }
        const write = pending.get(key);
        if (!write) return;
        stream = write.stream;
        for (const message of request.getProposedMessagesList()) {
          const proposed = toProposedEvent(message);
          write.events.push(proposed);
          write.size += sizeOnDisk(proposed);
        }
        if (write.size > MAX_APPEND_SIZE) {
          pending.delete(key);
          clearTimeout(write.timer);
          const exceeded = new sharedPb.MaximumAppendSizeExceeded().setMaxappendsize(MAX_APPEND_SIZE);
          return respond(correlation, stream, (r) =>
            r.setError(
              rpcStatus(
                codePb.Code.INVALID_ARGUMENT,
                'MaximumAppendSizeExceeded',
                exceeded,
                'MaximumAppendSizeExceeded',
              ),
            ),
          );
        }
        if (!request.getIsFinal()) return;
        pending.delete(key);
        clearTimeout(write.timer);
        inProgress += 1;
        void commit(ctx, write.stream, write.expected, write.events).then((outcome) => {
          inProgress -= 1;
          respond(correlation, write.stream, (r) => {
            if (outcome === 'timeout') r.setError(timeoutStatus());
            else if (!outcome.ok) r.setError(wrongExpectedVersionStatus(outcome.currentRevision, write.expected));
            else r.setSuccess(batchSuccess(outcome));
          });
          endIfDone();
        });
      } catch (e) {
        const write = pending.get(key);
        if (write) clearTimeout(write.timer);
        pending.delete(key);
        respond(correlation, stream, (r) => r.setError(badRequestStatus((e as Error).message)));
      }
    });
    call.on('end', () => {
      clientDone = true;
      endIfDone();
    });
    call.on('cancelled', () => {
      for (const write of pending.values()) clearTimeout(write.timer);
      pending.clear();
    });
  };

const batchSuccess = (outcome: Extract<AppendOutcome, { ok: true }>) => {
  const success = new streamsPb.BatchAppendResp.Success();
  if (outcome.lastRevision >= 0) success.setCurrentRevision(String(outcome.lastRevision));
  else success.setNoStream(googleEmpty());
  const position = new sharedPb.AllStreamPosition();
  position.setCommitPosition(String(outcome.position));
  position.setPreparePosition(String(outcome.position));
  return success.setPosition(position);
};
