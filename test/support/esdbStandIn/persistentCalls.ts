// EventStoreDB protocol stand-in for tests (not EventStoreDB): the PersistentSubscriptions service, for groups
// on $all only (Create, Update, Delete, Read), which is all the client's *PersistentSubscriptionToAll calls use.
import type { sendUnaryData, ServerDuplexStream, ServerUnaryCall } from '@grpc/grpc-js';
import type { StandInContext } from './context.js';
import {
  maximumSubscribersReached,
  notImplemented,
  persistentSubscriptionDoesNotExist,
  persistentSubscriptionDropped,
  persistentSubscriptionExists,
} from './errors.js';
import type { StoredEvent } from './eventLog.js';
import {
  ConsumerStrategy,
  PersistentGroup,
  type Consumer,
  type GroupSettings,
  type NackAction,
} from './persistentGroup.js';
import { persistentPb } from './pb.js';
import { defaultAllFilter, expressionFilter, fillRecordedEvent, parseUuid, toInt64 } from './wire.js';

type CreateReq = InstanceType<typeof persistentPb.CreateReq>;
type UpdateReq = InstanceType<typeof persistentPb.UpdateReq>;
type DeleteReq = InstanceType<typeof persistentPb.DeleteReq>;
type ReadReq = InstanceType<typeof persistentPb.ReadReq>;
type ReadResp = InstanceType<typeof persistentPb.ReadResp>;
type Settings =
  InstanceType<typeof persistentPb.CreateReq.Settings> | InstanceType<typeof persistentPb.UpdateReq.Settings>;

const ALL = '$all';
const TICKS_PER_MS = 10_000;
/** The persistent subscription service looks at timeouts once a second. */
const CLOCK_TICK_MS = 1_000;

const strategyOf = (settings: Settings): ConsumerStrategy => {
  // Only create carries the strategy by name (newer servers); update has just the enum.
  const named = 'getConsumerStrategy' in settings ? settings.getConsumerStrategy() : '';
  if (named === ConsumerStrategy.dispatchToSingle || named === ConsumerStrategy.pinned) return named;
  if (named) return ConsumerStrategy.roundRobin;
  const strategies = [ConsumerStrategy.dispatchToSingle, ConsumerStrategy.roundRobin, ConsumerStrategy.pinned];
  return strategies[settings.getNamedConsumerStrategy()] ?? ConsumerStrategy.roundRobin;
};

const settingsOf = (settings: Settings): GroupSettings => ({
  messageTimeoutMs: settings.hasMessageTimeoutMs()
    ? settings.getMessageTimeoutMs()
    : Number(settings.getMessageTimeoutTicks()) / TICKS_PER_MS,
  maxRetryCount: settings.getMaxRetryCount(),
  maxSubscriberCount: settings.getMaxSubscriberCount(),
  strategy: strategyOf(settings),
});

const nackActions: Record<number, NackAction> = {
  [persistentPb.ReadReq.Nack.Action.UNKNOWN]: 'unknown',
  [persistentPb.ReadReq.Nack.Action.PARK]: 'park',
  [persistentPb.ReadReq.Nack.Action.RETRY]: 'retry',
  [persistentPb.ReadReq.Nack.Action.SKIP]: 'skip',
  [persistentPb.ReadReq.Nack.Action.STOP]: 'stop',
};

const eventMessage = (event: StoredEvent, retryCount: number): ReadResp => {
  const read = new persistentPb.ReadResp.ReadEvent();
  read.setEvent(fillRecordedEvent(new persistentPb.ReadResp.ReadEvent.RecordedEvent(), event));
  read.setCommitPosition(String(event.position));
  read.setRetryCount(retryCount);
  return new persistentPb.ReadResp().setEvent(read);
};

const idsOf = (message: { getIdsList(): Parameters<typeof parseUuid>[0][] }): string[] =>
  message
    .getIdsList()
    .map(parseUuid)
    .filter((id): id is string => id !== undefined);

export type PersistentSubscriptions = ReturnType<typeof persistentSubscriptions>;

/** The groups outlive the gRPC server (a restart keeps them), like the server's own subscription config. */
export const persistentSubscriptions = (ctx: StandInContext) => {
  const groups = new Map<string, PersistentGroup>();
  let pumpScheduled = false;
  // New events reach the groups after the append that wrote them has returned (parking appends, too).
  const stopWatching = ctx.log.onCommit(() => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(() => {
      pumpScheduled = false;
      for (const group of groups.values()) group.pump();
    });
  });
  const clock = setInterval(() => {
    for (const group of groups.values()) group.tick(Date.now());
  }, CLOCK_TICK_MS);
  clock.unref();

  const create = (call: ServerUnaryCall<CreateReq, unknown>, callback: sendUnaryData<unknown>): void => {
    const options = call.request.getOptions();
    const all = options?.getAll();
    if (!options || !all) return callback(notImplemented('a persistent subscription to a stream'));
    const name = options.getGroupName();
    void ctx.latency().then(() => {
      if (groups.has(name)) return callback(persistentSubscriptionExists(ALL, name));
      const { log } = ctx;
      const position = all.getPosition();
      // From a position includes the event there; from the end means from the end at creation.
      const next = position
        ? log.indexAtOrAfter({
            commit: toInt64(position.getCommitPosition()),
            prepare: toInt64(position.getPreparePosition()),
          })
        : all.hasEnd()
          ? log.events.length
          : 0;
      const filterOptions = all.getFilter();
      const byStream = filterOptions?.getStreamIdentifier();
      const byType = filterOptions?.getEventType();
      const filter = byStream
        ? expressionFilter('stream', byStream)
        : byType
          ? expressionFilter('eventType', byType)
          : defaultAllFilter;
      const settings = settingsOf(options.getSettings() ?? new persistentPb.CreateReq.Settings());
      groups.set(name, new PersistentGroup(name, log, filter, next, settings));
      callback(null, new persistentPb.CreateResp());
    });
  };

  /** The server recreates the group: its consumers are dropped, it resumes where it was, filter unchanged. */
  const update = (call: ServerUnaryCall<UpdateReq, unknown>, callback: sendUnaryData<unknown>): void => {
    const options = call.request.getOptions();
    if (!options?.getAll()) return callback(notImplemented('a persistent subscription to a stream'));
    const name = options.getGroupName();
    void ctx.latency().then(() => {
      const group = groups.get(name);
      if (!group) return callback(persistentSubscriptionDoesNotExist(ALL, name));
      group.settings = settingsOf(options.getSettings() ?? new persistentPb.UpdateReq.Settings());
      group.dropConsumers();
      callback(null, new persistentPb.UpdateResp());
    });
  };

  const remove = (call: ServerUnaryCall<DeleteReq, unknown>, callback: sendUnaryData<unknown>): void => {
    const options = call.request.getOptions();
    if (!options?.hasAll()) return callback(notImplemented('a persistent subscription to a stream'));
    const name = options.getGroupName();
    void ctx.latency().then(() => {
      const group = groups.get(name);
      if (!group) return callback(persistentSubscriptionDoesNotExist(ALL, name));
      groups.delete(name);
      group.dropConsumers();
      callback(null, new persistentPb.DeleteResp());
    });
  };

  /** One consumer: options first, then acks and nacks from the client while events flow the other way. */
  const read = (call: ServerDuplexStream<ReadReq, ReadResp>): void => {
    let joined: { group: PersistentGroup; consumer: Consumer } | undefined;
    const leave = (): void => {
      ctx.openStreams.delete(call);
      joined?.group.removeConsumer(joined.consumer);
    };
    const join = async (options: InstanceType<typeof persistentPb.ReadReq.Options>): Promise<void> => {
      if (!options.hasAll()) return void call.emit('error', notImplemented('a persistent subscription to a stream'));
      const name = options.getGroupName();
      await ctx.latency();
      const group = groups.get(name);
      if (!group) return void call.emit('error', persistentSubscriptionDoesNotExist(ALL, name));
      if (group.isFull) return void call.emit('error', maximumSubscribersReached(ALL, name));
      if (call.cancelled) return;
      const consumer: Consumer = {
        maxInFlight: Math.max(1, options.getBufferSize()),
        deliver: (event, retryCount) => {
          if (!call.cancelled && !call.writableEnded) call.write(eventMessage(event, retryCount));
        },
        drop: () => call.emit('error', persistentSubscriptionDropped(ALL, name)),
      };
      call.write(
        new persistentPb.ReadResp().setSubscriptionConfirmation(
          new persistentPb.ReadResp.SubscriptionConfirmation().setSubscriptionId(`${ALL}::${name}`),
        ),
      );
      joined = { group, consumer };
      ctx.openStreams.add(call);
      group.addConsumer(consumer);
    };
    call.on('data', (request: ReadReq) => {
      const options = request.getOptions();
      if (options && !joined) return void join(options);
      const ack = request.getAck();
      const nack = request.getNack();
      if (ack) joined?.group.ack(idsOf(ack));
      else if (nack) joined?.group.nack(nackActions[nack.getAction()] ?? 'unknown', idsOf(nack), nack.getReason());
    });
    call.on('cancelled', leave);
    call.on('close', leave);
  };

  return {
    service: { create, update, delete: remove, read },
    sent: (name: string): number => groups.get(name)?.sent ?? 0,
    dispose: (): void => {
      clearInterval(clock);
      stopWatching();
    },
  };
};
