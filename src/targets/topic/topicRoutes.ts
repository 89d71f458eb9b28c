import type { FastifyPluginAsync } from 'fastify';
// Brings in the `websocket: true` route option and the socket handler signature.
import type {} from '@fastify/websocket';
import type { TimerHandle } from '../../clock/clock.js';
import { FramePacker, PACKED_FRAMES, messagesOf } from './frames.js';
import { CloseCode, ProtocolErrorCode, SubscribeQuery, errorMessageOf, type ServerMessage } from './protocol.js';
import type { TopicHub } from './topicHub.js';

/**
 * `GET /api/subscribe?group=..&topics=a,b&consumer=..` — the WebSocket where consumers receive topic
 * fires (`&relay=<nodeId>` marks a peer's relay, see `consumerRelay.ts`). Needs `@fastify/websocket`
 * registered on the parent instance. The route only adapts the socket to the hub; delivery semantics
 * live in `TopicHub`.
 */
export const topicRoutes =
  (hub: TopicHub): FastifyPluginAsync =>
  async (app) => {
    app.get('/api/subscribe', { websocket: true }, (socket, request) => {
      // A socket that is closing drops the frame; its close event hands the work to another consumer.
      const write = (frame: string): void => {
        if (socket.readyState === socket.OPEN) socket.send(frame);
      };
      const query = SubscribeQuery.safeParse(request.query);
      if (!query.success) {
        const error = errorMessageOf(ProtocolErrorCode.badSubscription, query.error);
        write(JSON.stringify(error));
        // Close reasons are limited to 123 bytes; the full text went in the error message.
        socket.close(CloseCode.badSubscription, `bad subscription: ${error.field ?? 'query'}`.slice(0, 120));
        return;
      }
      const { group, topics, consumer, relay, frames } = query.data;
      const packer = frames === PACKED_FRAMES ? new FramePacker(write) : null;
      const send = packer
        ? (message: ServerMessage): void => void packer.push(JSON.stringify(message))
        : (message: ServerMessage): void => write(JSON.stringify(message));
      const session = hub.attach(
        { group, topics, consumerId: consumer, ...(relay === undefined ? {} : { relayedBy: relay }) },
        {
          send,
          close: (code, reason) => {
            packer?.flush();
            socket.close(code, reason);
          },
        },
      );

      // Ping/pong finds links whose peer vanished without a FIN (machine lost, network cut), which
      // would otherwise hold their deliveries until the deadline.
      const { clock, heartbeatInterval } = hub.options;
      let heard = true;
      let heartbeat: TimerHandle | undefined;
      const beat = (): void => {
        if (!heard) {
          socket.terminate();
          return;
        }
        heard = false;
        socket.ping();
        heartbeat = clock.setTimer(beat, heartbeatInterval);
      };
      heartbeat = clock.setTimer(beat, heartbeatInterval);

      socket.on('pong', () => {
        heard = true;
      });
      socket.on('message', (data) => {
        heard = true;
        for (const message of messagesOf(data.toString())) session.receive(message);
      });
      socket.on('error', (error) => request.log.debug({ err: error }, 'subscriber socket error'));
      socket.on('close', () => {
        heartbeat?.cancel();
        session.closed();
      });
    });
  };
