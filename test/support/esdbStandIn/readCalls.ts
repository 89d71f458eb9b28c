// EventStoreDB protocol stand-in for tests (not EventStoreDB): Streams.Read, which serves the client's
// readStream, readAll, subscribeToStream and subscribeToAll (the options say which).
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { StandInContext } from './context.js';
import { invalidPosition, notImplemented } from './errors.js';
import type { StoredEvent } from './eventLog.js';
import { streamIdentifier, streamName, streamsPb } from './pb.js';
import { subscribeToAll, subscribeToStream } from './subscriptions.js';
import { eventResponse, requestedPosition, toInt64, writeWithBackpressure } from './wire.js';

type ReadReq = InstanceType<typeof streamsPb.ReadReq>;
type ReadResp = InstanceType<typeof streamsPb.ReadResp>;
type ReadCall = ServerWritableStream<ReadReq, ReadResp>;
type Options = InstanceType<typeof streamsPb.ReadReq.Options>;

const maxCount = (options: Options): number => Number(BigInt.asUintN(63, BigInt(options.getCount())));

const sendAll = async (call: ReadCall, events: readonly StoredEvent[]): Promise<void> => {
  for (const e of events) {
    if (call.cancelled) return;
    await writeWithBackpressure(call, eventResponse(e));
  }
  call.end();
};

const readStream = async (ctx: StandInContext, call: ReadCall, options: Options): Promise<void> => {
  const stream = options.getStream() as InstanceType<typeof streamsPb.ReadReq.Options.StreamOptions>;
  const name = streamName(stream.getStreamIdentifier());
  const from = stream.hasRevision() ? toInt64(stream.getRevision()) : stream.hasEnd() ? 'end' : 'start';
  const direction = options.getReadDirection() === streamsPb.ReadReq.Options.ReadDirection.BACKWARDS;
  await ctx.latency();
  const result = ctx.log.readStream(name, from, direction ? 'backwards' : 'forwards', maxCount(options));
  if (!result.exists) {
    const notFound = new streamsPb.ReadResp.StreamNotFound();
    notFound.setStreamIdentifier(streamIdentifier(name));
    call.write(new streamsPb.ReadResp().setStreamNotFound(notFound));
    call.end();
    return;
  }
  await sendAll(call, result.events);
};

/** Forwards from a position includes the event there; backwards takes the records that end before it. */
const readAll = async (ctx: StandInContext, call: ReadCall, options: Options): Promise<void> => {
  const all = options.getAll() as InstanceType<typeof streamsPb.ReadReq.Options.AllOptions>;
  const backwards = options.getReadDirection() === streamsPb.ReadReq.Options.ReadDirection.BACKWARDS;
  const count = maxCount(options);
  const position = all.getPosition();
  const requested = position ? requestedPosition(ctx.log, position) : undefined;
  if (position && !requested) return void call.emit('error', invalidPosition());
  await ctx.latency();
  const { log } = ctx;
  if (!backwards) {
    const first = requested ? log.indexAtOrAfter(requested) : all.hasEnd() ? log.events.length : 0;
    return sendAll(call, log.events.slice(first, first + count));
  }
  const end = requested ? log.indexAfterRecordsEndingBy(requested) : all.hasStart() ? 0 : log.events.length;
  return sendAll(call, log.events.slice(Math.max(0, end - count), end).reverse());
};

export const read =
  (ctx: StandInContext) =>
  (call: ReadCall): void => {
    const options = call.request.getOptions();
    const job = !options
      ? Promise.resolve(void call.emit('error', notImplemented('a read without options')))
      : options.hasSubscription()
        ? options.hasAll()
          ? subscribeToAll(ctx, call, options)
          : subscribeToStream(ctx, call, options)
        : options.hasAll()
          ? readAll(ctx, call, options)
          : readStream(ctx, call, options);
    job.catch((e: unknown) => call.emit('error', e));
  };
