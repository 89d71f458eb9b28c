import { pino } from 'pino';
import { systemClock } from '../../clock/clock.js';
import type { EventStore } from '../../store/eventStore.js';
import { openEventStore } from '../../store/openEventStore.js';
import type { QueryName } from '../queries/index.js';
import { readModels } from '../readModels.js';
import { ReadSide } from '../readSide.js';
import { wireErrorOf, type HostMessage, type HostRequest } from './protocol.js';

/**
 * The read-side process: forked by the node (childReadSide.ts), it opens its own connection to the
 * log and the read database, follows the log, and answers the node's queries, replays and feeds over
 * the IPC channel. It exits when the node asks, or when the node is gone (the channel closes).
 */

const send = (message: HostMessage): void => {
  if (process.connected) process.send?.(message);
};

let readSide: ReadSide | null = null;
let store: EventStore | null = null;
let closing: Promise<void> | null = null;
/** Requests that arrive while `init` still opens the log wait for it. */
let initialised: Promise<void> = Promise.resolve();

const shutdown = (): Promise<void> =>
  (closing ??= (async () => {
    readSide?.close('the node is stopping');
    await store?.close();
    process.exit(0);
  })());

const handle = async (message: HostRequest): Promise<void> => {
  if (message.t !== 'init') await initialised;
  switch (message.t) {
    case 'init': {
      const { init } = message;
      const logger = pino({ level: init.logLevel, base: { node: init.nodeId, part: 'read-side' } });
      try {
        // Never appends: no writer thread for the log (the node has its own).
        store = await openEventStore(init.store, { sqlite: { writer: 'inline' } });
        readSide = ReadSide.open({
          store,
          file: init.file,
          models: readModels(init.models),
          clock: systemClock,
          logger,
          sink: {
            send: (feed, chunk) => send({ t: 'feed-data', feed, chunk }),
            end: (feed, reason) => send({ t: 'feed-end', feed, reason }),
          },
        });
        readSide.start();
        send({ t: 'ready' });
      } catch (err) {
        logger.error({ err }, 'the read side could not start');
        send({ t: 'failed', error: wireErrorOf(err) });
        await shutdown();
      }
      return;
    }
    case 'query': {
      const side = readSide;
      if (!side) return;
      try {
        const value = await side.query(message.name as QueryName, message.args as never, message.minPosition);
        send({ t: 'reply', id: message.id, ok: true, value });
      } catch (err) {
        send({ t: 'reply', id: message.id, ok: false, error: wireErrorOf(err) });
      }
      return;
    }
    case 'replay': {
      const side = readSide;
      if (!side) return;
      try {
        const value = await side.replay(message.args, (progress) => send({ t: 'progress', id: message.id, progress }));
        send({ t: 'reply', id: message.id, ok: true, value });
      } catch (err) {
        send({ t: 'reply', id: message.id, ok: false, error: wireErrorOf(err) });
      }
      return;
    }
    case 'feed-open':
      readSide?.openFeed(message.feed, message.after, message.filter, message.windowBytes);
      return;
    case 'feed-close':
      readSide?.closeFeed(message.feed);
      return;
    case 'feed-ack':
      readSide?.ackFeed(message.feed, message.bytes);
      return;
    case 'node-busy':
      readSide?.projector.nodeBusy(message.busy);
      return;
    case 'close':
      await readSide?.caughtUpTo(message.position);
      await shutdown();
  }
};

process.on('message', (message: HostRequest) => {
  const handled = handle(message);
  if (message.t === 'init') initialised = handled;
});
// The node died (kill -9 included): nobody is left to serve.
process.on('disconnect', () => void shutdown());
