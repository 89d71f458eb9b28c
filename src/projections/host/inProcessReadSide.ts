import type { Logger } from 'pino';
import type { Clock } from '../../clock/clock.js';
import type { EventStore } from '../../store/eventStore.js';
import { ReadSide } from '../readSide.js';
import type { RegisteredModel } from '../readModelDb.js';
import type { FeedHandlers, ReadSidePort } from './readSidePort.js';

/**
 * The read side in the node's own process, for a log no other process can read (`memory:`): the same
 * models and queries over an in-memory read database. Tests and demos only: its work shares the
 * node's event loop.
 */
export const inProcessReadSide = (options: {
  store: EventStore;
  models: readonly RegisteredModel[];
  clock: Clock;
  logger: Logger;
}): ReadSidePort => {
  const feeds = new Map<number, FeedHandlers>();
  let nextFeed = 1;
  const readSide = ReadSide.open({
    ...options,
    file: ':memory:',
    sink: {
      send: (id, chunk) => {
        const feed = feeds.get(id);
        if (!feed) return;
        feed.data(chunk, () => readSide.ackFeed(id, chunk.length));
      },
      end: (id, reason) => {
        feeds.get(id)?.end(reason);
        feeds.delete(id);
      },
    },
  });
  readSide.start();
  return {
    query: (name, args, minPosition) => readSide.query(name, args, minPosition),
    replay: (args, onProgress) => readSide.replay(args, onProgress),
    openFeed(after, filter, handlers, windowBytes) {
      const id = nextFeed++;
      feeds.set(id, handlers);
      readSide.openFeed(id, after, filter, windowBytes);
      return {
        close: () => {
          feeds.delete(id);
          readSide.closeFeed(id);
        },
      };
    },
    // The node's own process: no CPU class to set apart, only the projector's commit size.
    nodeBusy: (busy) => readSide.projector.nodeBusy(busy),
    close: async (position = 0) => {
      await readSide.caughtUpTo(position);
      readSide.close();
    },
  };
};
