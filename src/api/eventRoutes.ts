import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseOrThrow } from '../../domain/errors/index.js';
import type { EventStore, RecordedEvent } from '../store/eventStore.js';
import { QueryInt } from './validation.js';

const EventsQuery = z.object({
  /** First position to return (inclusive). */
  from: QueryInt(0, Number.MAX_SAFE_INTEGER).default(0),
  limit: QueryInt(1, 10_000).default(1_000),
});

/** The raw log as JSON, the same shape `kairos events --format ndjson` prints. */
export const eventJsonOf = (e: RecordedEvent) => ({
  position: Number(e.position),
  id: e.id,
  stream: e.stream,
  revision: Number(e.revision),
  type: e.type,
  data: e.data,
  metadata: e.metadata,
  time: e.time.toISOString(),
});

export const eventRoutes = (store: EventStore) => async (app: FastifyInstance) => {
  app.get('/api/events', async (request) => {
    const q = parseOrThrow(EventsQuery, request.query);
    // Positions start at 1, so `from` N means after N-1.
    const events = await store.readAll({ after: q.from > 0 ? BigInt(q.from - 1) : 0n, maxCount: q.limit });
    const last = events.at(-1);
    return { events: events.map(eventJsonOf), next: last ? Number(last.position) + 1 : q.from };
  });
};
