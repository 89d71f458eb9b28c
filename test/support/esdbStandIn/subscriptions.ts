// EventStoreDB protocol stand-in for tests (not EventStoreDB): catch-up subscriptions, as a 23.10+ server runs
// them. Confirmation first; catch-up from the log; CaughtUp; then live events as they are committed. Filtered
// $all subscriptions also send checkpoints: during catch-up every `checkpointInterval × window` events considered
// (a page of a read is `window` events, 32 unless `maxSearchWindow` is set), at the last event sent or the start
// of the page; when going live; and while live, every `checkpointInterval × window` events committed.
import { randomUUID } from 'node:crypto';
import type { ServerWritableStream } from '@grpc/grpc-js';
import { READ_BATCH_SIZE, type StandInContext } from './context.js';
import { invalidPosition } from './errors.js';
import {
  afterEvent,
  comparePositions,
  eventPosition,
  type EventLog,
  type LogPosition,
  type StoredEvent,
} from './eventLog.js';
import { streamName, streamsPb } from './pb.js';
import {
  eventResponse,
  expressionFilter,
  requestedPosition,
  toInt64,
  writeWithBackpressure,
  type EventFilter,
} from './wire.js';

type ReadReq = InstanceType<typeof streamsPb.ReadReq>;
type ReadResp = InstanceType<typeof streamsPb.ReadResp>;
type SubscriptionCall = ServerWritableStream<ReadReq, ReadResp>;
type Options = InstanceType<typeof streamsPb.ReadReq.Options>;

/** Lets a caught-up subscription sleep until the log grows or its call ends. */
class LogWatch {
  private wake: (() => void) | undefined;
  private readonly stopWatching: () => void;

  constructor(log: EventLog, call: SubscriptionCall) {
    this.stopWatching = log.onCommit(() => this.wake?.());
    call.once('cancelled', () => this.wake?.());
  }

  next(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = undefined;
        resolve();
      };
    });
  }

  dispose(): void {
    this.stopWatching();
    this.wake?.();
  }
}

const confirmation = (): ReadResp =>
  new streamsPb.ReadResp().setConfirmation(
    new streamsPb.ReadResp.SubscriptionConfirmation().setSubscriptionId(randomUUID()),
  );

const caughtUp = (): ReadResp => new streamsPb.ReadResp().setCaughtUp(new streamsPb.ReadResp.CaughtUp());

const checkpointResponse = (position: LogPosition): ReadResp =>
  new streamsPb.ReadResp().setCheckpoint(
    new streamsPb.ReadResp.Checkpoint()
      .setCommitPosition(String(position.commit))
      .setPreparePosition(String(position.prepare)),
  );

const later = (a: LogPosition | undefined, b: LogPosition | undefined): LogPosition | undefined =>
  !a ? b : !b ? a : comparePositions(a, b) >= 0 ? a : b;

/** Runs `body` as an open server stream: counted while it runs, its log watch released when it ends. */
const running = async (
  ctx: StandInContext,
  call: SubscriptionCall,
  body: (send: (message: ReadResp) => Promise<boolean>, watch: LogWatch) => Promise<void>,
): Promise<void> => {
  const watch = new LogWatch(ctx.log, call);
  ctx.openStreams.add(call);
  // False once the client has gone: the loops stop there.
  const send = async (message: ReadResp): Promise<boolean> => {
    if (call.cancelled) return false;
    await writeWithBackpressure(call, message);
    return !call.cancelled;
  };
  try {
    await body(send, watch);
  } finally {
    watch.dispose();
    ctx.openStreams.delete(call);
  }
};

const filterOf = (filter: InstanceType<typeof streamsPb.ReadReq.Options.FilterOptions>): EventFilter => {
  const byStream = filter.getStreamIdentifier();
  return byStream ? expressionFilter('stream', byStream) : expressionFilter('eventType', filter.getEventType()!);
};

export const subscribeToAll = async (ctx: StandInContext, call: SubscriptionCall, options: Options): Promise<void> => {
  const { log } = ctx;
  const all = options.getAll() as InstanceType<typeof streamsPb.ReadReq.Options.AllOptions>;
  const filterOptions = options.getFilter();
  const filter = filterOptions ? filterOf(filterOptions) : undefined;
  const window = filterOptions?.hasMax() ? filterOptions.getMax() : READ_BATCH_SIZE;
  const interval = (filterOptions?.getCheckpointintervalmultiplier() ?? 0) * window;
  const position = all.getPosition();
  const requested = position ? requestedPosition(ctx.log, position) : undefined;
  await ctx.latency();
  call.write(confirmation());
  if (position && !requested) return void call.emit('error', invalidPosition());

  // The last event or checkpoint sent; undefined: nothing yet, the head of the log.
  let checkpoint: LogPosition | undefined;
  let next = 0;
  const lastEvent = log.events.at(-1);
  if (all.hasEnd()) {
    checkpoint = lastEvent && eventPosition(lastEvent);
    next = log.events.length;
  } else if (requested) {
    checkpoint = requested;
    next = log.indexAtOrAfter(requested);
    const at = log.events[next];
    if (at && comparePositions(eventPosition(at), requested) <= 0) next += 1;
  }
  const startsLive =
    all.hasEnd() || (checkpoint && (!lastEvent || comparePositions(checkpoint, eventPosition(lastEvent)) >= 0));

  await running(ctx, call, async (send, watch) => {
    if (!startsLive) {
      let pageStart = checkpoint;
      let considered = 0;
      for (;;) {
        const page = log.events.slice(next, next + window);
        next += page.length;
        for (const e of page) {
          if (filter && !filter(e)) continue;
          if (!(await send(eventResponse(e)))) return;
          checkpoint = eventPosition(e);
        }
        considered += page.length;
        const endOfLog = page.length < window;
        if (filter && (endOfLog || considered >= interval)) {
          considered %= interval;
          const reached = later(checkpoint, pageStart);
          if (reached && !(await send(checkpointResponse(reached)))) return;
          checkpoint = reached;
        }
        if (endOfLog) break;
        pageStart = afterEvent(page[page.length - 1] as StoredEvent);
      }
    }
    if (!(await send(caughtUp()))) return;
    let considered = 0;
    for (;;) {
      while (next >= log.events.length) {
        if (call.cancelled) return;
        await watch.next();
      }
      const e = log.events[next++] as StoredEvent;
      const at = eventPosition(e);
      considered += 1;
      // Only after a start position beyond the head can a live event be at or before what was sent.
      const after = !checkpoint || comparePositions(at, checkpoint) > 0;
      if (after && (!filter || filter(e))) {
        if (!(await send(eventResponse(e)))) return;
        checkpoint = at;
      }
      if (filter && considered >= interval) {
        considered = 0;
        if (!checkpoint || comparePositions(at, checkpoint) >= 0) {
          if (!(await send(checkpointResponse(at)))) return;
          checkpoint = at;
        }
      }
    }
  });
};

/** From a revision means after it; catch-up reads honour the stream's metadata, live events do not. */
export const subscribeToStream = async (
  ctx: StandInContext,
  call: SubscriptionCall,
  options: Options,
): Promise<void> => {
  const { log } = ctx;
  const stream = options.getStream() as InstanceType<typeof streamsPb.ReadReq.Options.StreamOptions>;
  const name = streamName(stream.getStreamIdentifier());
  let after = stream.hasRevision() ? toInt64(stream.getRevision()) : stream.hasEnd() ? log.lastRevision(name) : -1;
  await ctx.latency();
  call.write(confirmation());
  await running(ctx, call, async (send, watch) => {
    for (let page = log.visibleAfter(name, after); page.length > 0; page = log.visibleAfter(name, after)) {
      for (const e of page) {
        if (!(await send(eventResponse(e)))) return;
        after = e.revision;
      }
    }
    after = Math.max(after, log.lastRevision(name));
    if (!(await send(caughtUp()))) return;
    for (;;) {
      const e = log.streamEvents(name)[after + 1];
      if (!e) {
        if (call.cancelled) return;
        await watch.next();
        continue;
      }
      if (!(await send(eventResponse(e)))) return;
      after = e.revision;
    }
  });
};
