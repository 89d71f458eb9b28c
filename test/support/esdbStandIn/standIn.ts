// EventStoreDB protocol stand-in for tests (not EventStoreDB): the gRPC server that ties the calls together.
import { setTimeout as sleep } from 'node:timers/promises';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { append } from './appendCall.js';
import { batchAppend } from './batchAppendCall.js';
import type { StandInContext } from './context.js';
import { getSupportedMethods, gossipRead } from './discoveryCalls.js';
import { EventLog } from './eventLog.js';
import { persistentSubscriptions } from './persistentCalls.js';
import { gossipGrpc, persistentGrpc, serverFeaturesGrpc, streamsGrpc } from './pb.js';
import { read } from './readCalls.js';

export type EsdbStandInOptions = {
  /** @default 0 (any free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
};

export type EsdbStandIn = {
  /** A single-node, insecure connection string for `EventStoreDBClient.connectionString`. */
  readonly url: string;
  readonly port: number;
  /** Server streams still open: catch-up subscriptions and persistent-subscription consumers. */
  openStreams(): number;
  /**
   * Makes every request wait `ms` before it is served. An append still waiting after the server's 2 s write
   * timeout is answered as timed out and lands afterwards, as it can on a real node.
   */
  setLatency(ms: number): void;
  /**
   * Drops every connection (clients see UNAVAILABLE) and serves again on the same port with the same log,
   * after `downMs` without a server.
   */
  restart(downMs?: number): Promise<void>;
  /** Events a persistent subscription group has sent to its consumers, retries included (0: no such group). */
  persistentSent(group: string): number;
  stop(): Promise<void>;
};

/**
 * Starts a gRPC server that speaks EventStoreDB's client protocol for the calls Kairos makes, over an in-memory
 * log with EventStoreDB's rules. A stand-in for tests, not EventStoreDB: see README.md beside this file.
 */
export const startEsdbStandIn = async (options: EsdbStandInOptions = {}): Promise<EsdbStandIn> => {
  const host = options.host ?? '127.0.0.1';
  let port = options.port ?? 0;
  let latencyMs = 0;
  const ctx: StandInContext = {
    log: new EventLog(),
    latency: () => (latencyMs > 0 ? sleep(latencyMs) : Promise.resolve()),
    openStreams: new Set(),
  };
  const persistent = persistentSubscriptions(ctx);
  // Gossip must name an address clients can dial, which a wildcard listen address is not.
  const advertised = (): { host: string; port: number } => ({ host: host === '0.0.0.0' ? '127.0.0.1' : host, port });

  const serve = async (): Promise<Server> => {
    const server = new Server();
    server.addService(streamsGrpc.StreamsService, {
      read: read(ctx),
      append: append(ctx),
      batchAppend: batchAppend(ctx),
    });
    server.addService(persistentGrpc.PersistentSubscriptionsService, persistent.service);
    server.addService(serverFeaturesGrpc.ServerFeaturesService, { getSupportedMethods });
    server.addService(gossipGrpc.GossipService, { read: gossipRead(advertised) });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    return server;
  };

  let server = await serve();
  let stopped = false;
  return {
    get url() {
      return `esdb://${advertised().host}:${port}?tls=false`;
    },
    get port() {
      return port;
    },
    openStreams: () => ctx.openStreams.size,
    setLatency: (ms) => {
      latencyMs = ms;
    },
    restart: async (downMs = 0) => {
      server.forceShutdown();
      if (downMs > 0) await sleep(downMs);
      server = await serve();
    },
    persistentSent: (group) => persistent.sent(group),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      server.forceShutdown();
      persistent.dispose();
    },
  };
};
