import type { FastifyInstance } from 'fastify';
import { ValidationError, parseOrThrow } from '../../domain/errors/index.js';
import type { Clock, TimerHandle } from '../clock/clock.js';
import type { ReadSidePort } from '../projections/host/readSidePort.js';
import { StreamQuery } from './readQueries.js';
import { readSideOff } from './readRoutes.js';

export type StreamOptions = {
  /** A comment line this often keeps proxies from closing an idle stream. */
  heartbeatMs: number;
  /**
   * Bytes of a subscriber's feed the node may hold that the subscriber has not read (beyond what its
   * socket takes): the read side sends no more until it reads (never buffered without bound).
   */
  maxBufferBytes: number;
};

/** How long a finished stream's last message may wait to be read before the socket is dropped. */
const CLOSE_GRACE_MS = 5_000;

/** `Last-Event-ID` wins over `?after=`; neither means "from now on". */
const resumeFrom = (header: unknown, after: number | undefined): number => {
  if (header === undefined) return after ?? -1;
  const position = typeof header === 'string' && /^\d+$/.test(header.trim()) ? Number(header.trim()) : Number.NaN;
  // As `?after=`: a whole number a position can be (a larger one would wait silently for ever).
  if (!Number.isSafeInteger(position))
    throw new ValidationError([
      { path: 'Last-Event-ID', message: 'must be a log position (the id of an event received)' },
    ]);
  return position;
};

/**
 * `GET /api/stream`: the live feed as Server-Sent Events (design §6) — lifecycle events (`id` = log
 * position) and board rows, filtered by task, topic and type, resumable with `Last-Event-ID`. It is
 * sent as fast as the subscriber reads: at most `maxBufferBytes` ahead of what its socket has taken.
 * A subscriber that takes nothing for a whole heartbeat interval while data waits for it is told why
 * and disconnected (`event: error`, code `slow_consumer`).
 */
export const streamRoutes =
  (readSide: ReadSidePort | null, clock: Clock, options: StreamOptions) => async (app: FastifyInstance) => {
    /** Each open stream's way to end itself: a stopping node ends them all, or its server would wait for them. */
    const open = new Set<(reason: string) => void>();
    app.addHook('preClose', async () => {
      for (const end of [...open]) end('the node is stopping; reconnect (to another node) with Last-Event-ID');
    });

    app.get('/api/stream', async (request, reply) => {
      const q = parseOrThrow(StreamQuery, request.query);
      const after = resumeFrom(request.headers['last-event-id'], q.after);
      if (!readSide) throw readSideOff();
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      raw.write(': kairos live feed\nretry: 2000\n\n');
      let done = false;
      /** Whether any of the feed left for the socket since the last heartbeat. */
      let takenSinceBeat = false;
      const stop = (): void => {
        done = true;
        heartbeat.cancel();
        feed.close();
        open.delete(endStream);
      };
      const finish = (event: string, data: unknown): void => {
        if (done) return;
        stop();
        raw.end(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        // A subscriber that does not read even its last message is not waited for.
        clock.setTimer(() => raw.destroy(), CLOSE_GRACE_MS);
      };
      const endStream = (reason: string): void => finish('end', { reason });
      open.add(endStream);
      const feed = readSide.openFeed(
        after,
        {
          ...(q.task ? { tasks: q.task } : {}),
          ...(q.topic ? { topics: q.topic } : {}),
          ...(q.type ? { types: q.type } : {}),
        },
        {
          data: (chunk, taken) => {
            if (done) return;
            raw.write(chunk, () => {
              takenSinceBeat = true;
              taken();
            });
          },
          end: endStream,
        },
        options.maxBufferBytes,
      );
      let heartbeat: TimerHandle;
      const beat = (): void => {
        heartbeat = clock.setTimer(() => {
          if (done) return;
          if (raw.writableLength > 0 && !takenSinceBeat)
            return finish('error', {
              code: 'slow_consumer',
              message: `this subscriber read nothing for ${options.heartbeatMs} ms while ${raw.writableLength} bytes waited; reconnect with Last-Event-ID to resume`,
            });
          takenSinceBeat = false;
          raw.write(': heartbeat\n\n');
          beat();
        }, options.heartbeatMs);
      };
      beat();
      request.raw.on('close', stop);
    });
  };
