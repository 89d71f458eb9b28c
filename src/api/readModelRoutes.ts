import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ValidationError, parseOrThrow } from '../../domain/errors/index.js';
import type { EventStore } from '../store/eventStore.js';
import type { ReadSidePort } from '../projections/host/readSidePort.js';
import { READ_MODEL_NAMES } from '../projections/readModels.js';
import { readSideOff, type ReadQuery } from './readRoutes.js';

const ReplayBody = z
  .strictObject({
    /** Models to rebuild; all when absent. */
    models: z.array(z.enum(READ_MODEL_NAMES)).min(1).optional(),
    /** Rebuild from this log position on (the rows then describe only what follows it). */
    from: z.number().int().nonnegative().optional(),
    /** Rebuild into a scratch database and compare it with the live models, row for row; changes nothing. */
    check: z.boolean().optional(),
  })
  .refine((b) => !(b.check && b.from !== undefined), { path: ['from'], message: 'cannot be combined with check' })
  .optional();

/**
 * The read models themselves: where each stands (`GET /api/read-models`), and `POST
 * /api/read-models/replay`, which rebuilds them from the log while the live ones go on serving. The
 * replay answers as NDJSON: a `{"progress": …}` line per page read, then `{"result": …}` (or
 * `{"error": …}`), so a client can draw progress for a rebuild of millions of events.
 */
export const readModelRoutes =
  (readSide: ReadSidePort | null, read: ReadQuery, store: EventStore) => async (app: FastifyInstance) => {
    app.get('/api/read-models', async () => read('status', {}));

    app.post('/api/read-models/replay', async (request, reply) => {
      const body = parseOrThrow(ReplayBody, request.body ?? undefined, 'body') ?? {};
      if (!readSide) throw readSideOff();
      const head = Number(await store.headPosition());
      if (body.from !== undefined && body.from > head)
        throw new ValidationError([
          { path: 'body.from', message: `must be at most the log's head position (${head})` },
        ]);
      // The stream starts with the first line: a replay refused before it began (one is already
      // running) is a plain error answer with its status, not a 200 carrying an error.
      let streaming = false;
      const line = (value: unknown): void => {
        if (!streaming) {
          streaming = true;
          reply.hijack();
          reply.raw.writeHead(200, {
            'content-type': 'application/x-ndjson; charset=utf-8',
            'cache-control': 'no-cache',
          });
        }
        reply.raw.write(`${JSON.stringify(value)}\n`);
      };
      try {
        line({ result: await readSide.replay(body, (progress) => line({ progress })) });
      } catch (err) {
        if (!streaming) throw err;
        const e = err as { code?: string; message?: string; details?: unknown };
        line({ error: { code: e.code ?? 'internal', message: e.message ?? String(err), details: e.details } });
      }
      reply.raw.end();
    });
  };
