import type { FastifyInstance } from 'fastify';
import { ValidationError, parseOrThrow } from '../../domain/errors/index.js';
import type { Clock, TimerHandle } from '../clock/clock.js';
import type { ReadSidePort } from '../projections/host/readSidePort.js';
import { StreamQuery } from './readQueries.js';
import { readSideOff } from './readRoutes.js';

export type StreamOptions = {
  /** A comment line this often keeps proxies from closing an idle stream. */
  heartbeatMs: number;
  /** Bytes a subscriber may leave unread before it is disconnected (never buffered without bound). */
  maxBufferBytes: number;
};

/** `Last-Event-ID` wins over `?after=`; neither means "from now on". */
const resumeFrom = (header: unknown, after: number | undefined): number => {
  if (header === undefined) return after ?? -1;
  if (typeof header !== 'string' || !/^\d+$/.test(header.trim()))
    throw new ValidationError([
      { path: 'Last-Event-ID', message: 'must be a log position (the id of an event received)' },
    ]);
  return Number(header.trim());
};

/**
 * `GET /api/stream`: the live feed as Server-Sent Events (design §6) — lifecycle events (`id` = log
 * position) and board rows, filtered by task, topic and type, resumable with `Last-Event-ID`. A
 * subscriber that reads too slowly is told why and disconnected (`event: error`, code `slow_consumer`).
 */
export const streamRoutes =
  (readSide: ReadSidePort | null, clock: Clock, options: StreamOptions) => async (app: FastifyInstance) => {
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
      const finish = (event: string, data: unknown): void => {
        if (done) return;
        done = true;
        heartbeat.cancel();
        feed.close();
        raw.end(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      const feed = readSide.openFeed(
        after,
        {
          ...(q.task ? { tasks: q.task } : {}),
          ...(q.topic ? { topics: q.topic } : {}),
          ...(q.type ? { types: q.type } : {}),
        },
        {
          data: (chunk) => {
            if (done) return;
            raw.write(chunk);
            if (raw.writableLength > options.maxBufferBytes)
              finish('error', {
                code: 'slow_consumer',
                message: `this subscriber left more than ${options.maxBufferBytes} bytes unread; reconnect with Last-Event-ID to resume`,
              });
          },
          end: (reason) => finish('end', { reason }),
        },
      );
      let heartbeat: TimerHandle;
      const beat = (): void => {
        heartbeat = clock.setTimer(() => {
          if (done) return;
          raw.write(': heartbeat\n\n');
          beat();
        }, options.heartbeatMs);
      };
      beat();
      request.raw.on('close', () => {
        done = true;
        heartbeat.cancel();
        feed.close();
      });
    });
  };
