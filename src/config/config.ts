import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ValidationError, fieldIssuesOf } from '../../domain/errors/index.js';
import { Duration } from '../../domain/time/duration.js';
import { RetentionSpec } from '../../domain/task/spec.js';
import { isEsdbUrl } from '../store/openEventStore.js';

const PORT = 'must be a port number from 0 to 65535';
const DAY_MS = 86_400_000;
const WEIGHT = 'must be a positive number up to 1000';
const SLOTS = 'must be a whole number from 1 to 65536';
const COUNT = 'must be a whole number from 1 to 1000000000';

/**
 * A whole number in [min, max], also as the digits an env var or a flag carries (`z.coerce` would read
 * "" and " " as 0); every refusal says `message`.
 */
const wholeNumber = (min: number, max: number, message: string) =>
  z
    .union(
      [
        z.number(),
        z
          .string()
          .regex(/^\s*\d+\s*$/, message)
          .transform(Number),
      ],
      { error: message },
    )
    .pipe(z.number().int(message).min(min, message).max(max, message));
const count = () => wholeNumber(1, 1_000_000_000, COUNT);
const LABELS_TEXT = /^\s*$|^\s*[^=,\s]+\s*=[^,]*(,\s*[^=,\s]+\s*=[^,]*)*$/;

const parseLabels = (text: string): Record<string, string> =>
  Object.fromEntries(
    text
      .split(',')
      .filter((pair) => pair.trim() !== '')
      .map((pair) => {
        const eq = pair.indexOf('=');
        return [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
      }),
  );

/**
 * Node configuration: defaults (embedded single node) < config file (`KAIROS_CONFIG` or `--config`,
 * YAML or JSON) < `KAIROS_*` environment variables < command-line flags. One zod schema validates the
 * merge; `compileConfig` returns every field filled in (options compiled once, at the boundary).
 */
export const KairosOptions = z.strictObject({
  port: wholeNumber(0, 65_535, PORT).default(8080),
  host: z.string().min(1).default('127.0.0.1'),
  /** This node's private directory (epoch file, default embedded log). */
  dataDir: z.string().min(1).default('./data'),
  nodeId: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-"')
    .optional(),
  /** `sqlite:<file>` (default `sqlite:<dataDir>/kairos.db`) or `memory:`. */
  store: z.string().min(1).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** ZooKeeper ensemble with chroot (`127.0.0.1:2181,127.0.0.1:2182/kairos/prod`): cluster mode. Absent: a single node. */
  zk: z.string().min(1).optional(),
  /** ZooKeeper session timeout: how long a silent node keeps its tasks. */
  zkSessionTimeout: Duration.default(5_000),
  /** Slots of a new cluster (fixed at its creation; a node whose setting differs from the cluster's refuses to start). */
  zkSlotCount: wholeNumber(1, 65_536, SLOTS).optional(),
  /** Digest credentials `user:password`; Kairos' znodes are then readable and writable by that identity only. */
  zkAuth: z
    .string()
    .regex(/^[^:]+:.+$/, 'must be user:password')
    .optional(),
  /**
   * The URL other nodes reach this node's API at (published in ZooKeeper; the consumer relay uses it).
   * Default: `http://<host>:<port>`, which only works across machines when `host` is a routable address.
   */
  advertiseUrl: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  /** Relative capacity in a cluster: a node of weight 2 holds about twice the slots of one of weight 1. */
  nodeWeight: z
    .union(
      [
        z.number(),
        z
          .string()
          .regex(/^\s*\d+(\.\d+)?\s*$/, WEIGHT)
          .transform(Number),
      ],
      { error: WEIGHT },
    )
    .pipe(z.number().positive(WEIGHT).max(1_000, WEIGHT))
    .default(1),
  /** Labels matched by tasks' `runOn.labels`: a mapping, or text `zone=eu-1,gpu=true`. */
  nodeLabels: z
    .union([
      z.record(z.string().min(1), z.string()),
      z
        .string()
        .regex(LABELS_TEXT, 'must be key=value pairs separated by commas, e.g. zone=eu-1,gpu=true')
        .transform(parseLabels),
    ])
    .default({}),
  /** On SIGTERM, how long to wait for fires under way to report before handing them to the next owner. */
  drainTimeout: Duration.default(5_000),
  /** Decisions under way at most; due tasks beyond wait, and the ticks they miss are recorded as an overload. */
  maxDecisionsInFlight: count().default(10_000),
  /**
   * How long before its instant a due task is decided and held, to go out with that instant's batch; 0:
   * when due. Default 500 ms, 0 on EventStoreDB (its batches are written one append after another).
   */
  fireLead: Duration.refine((ms) => ms <= 5_000, 'must be at most 5s').optional(),
  /** How often a running node saves its state snapshot (`<dataDir>/node-state.snapshot`); also on stop. */
  snapshotEvery: Duration.refine((ms) => ms >= 1_000, 'must be at least 1s').default(300_000),
  subscribers: z
    .strictObject({
      /** A consumer that has not acknowledged receipt of a fire by then loses it to another consumer of its group. */
      ackTimeout: Duration.default(5_000),
      /** How long a consumer group that lost all its consumers still has fires kept for it. */
      groupGrace: Duration.default(60_000),
    })
    .prefault({}),
  /**
   * How much execution history task streams keep (docs/operations.md, "Retention"); a task's own
   * `retention` replaces it. Nothing set: everything is kept. Definitions and owners are never dropped.
   */
  retention: z
    .strictObject({
      /** Drop fires older than this (e.g. `90d`). */
      maxAge: RetentionSpec.shape.maxAge,
      /** Keep at most this many of each task's most recent fires. */
      maxFires: count().optional(),
      /** Events appended to a task stream between two looks at what it may drop. */
      checkEvery: count().default(100),
    })
    .prefault({}),
  /** The read side (docs/operations.md, "Read side"): read models, queries, the live feed. */
  readSide: z
    .strictObject({
      /** `off`: no read models, queries or live feed on this node (it still fires). */
      enabled: z
        .union([z.boolean(), z.enum(['on', 'off'], { error: 'must be on or off' }).transform((v) => v === 'on')])
        .default(true),
      /** The read database (default `<dataDir>/read.db`); it can always be rebuilt from the log. */
      db: z.string().min(1).optional(),
      /** How long the fire index keeps attempts (e.g. `90d`); default: as long as the log. */
      firesRetention: Duration.optional(),
      /** How long statistics are kept per tier. */
      statsRetention: z
        .strictObject({
          minute: Duration.default(2 * DAY_MS),
          hour: Duration.default(90 * DAY_MS),
          day: Duration.default(1_826 * DAY_MS),
        })
        .prefault({}),
    })
    .prefault({}),
  /** The live feed (`GET /api/stream`). */
  stream: z
    .strictObject({
      /** A comment line this often keeps idle connections open through proxies. */
      heartbeat: Duration.default(15_000),
      /** Bytes of a live feed sent ahead of what its subscriber has read (the read side waits beyond it). */
      maxBuffer: wholeNumber(1_024, 1_073_741_824, 'must be a whole number of bytes from 1024 to 1073741824').default(
        1_048_576,
      ),
    })
    .prefault({}),
});
export type KairosOptions = z.input<typeof KairosOptions>;

export type CompiledConfig = {
  port: number;
  host: string;
  dataDir: string;
  nodeId: string;
  store: string;
  logLevel: z.output<typeof KairosOptions>['logLevel'];
  subscribers: { ackTimeout: number; groupGrace: number };
  /** What this node announces to the cluster (`runOn` matches the labels; `address` defaults to the API's URL). */
  member: { weight: number; labels: Record<string, string>; address?: string };
  drainTimeoutMs: number;
  maxDecisionsInFlight: number;
  fireLeadMs: number;
  /** Null with an in-memory log (nothing to replay at the next start). */
  snapshot: { file: string; everyMs: number } | null;
  /** null: no limit of that kind (both null: every event is kept). */
  retention: { maxAgeMs: number | null; maxFires: number | null; checkEvery: number };
  /** Null: no read side on this node. */
  readSide: {
    db: string;
    firesKeepMs: number | null;
    statsKeepMs: { minute: number; hour: number; day: number };
  } | null;
  stream: { heartbeatMs: number; maxBufferBytes: number };
  /** Cluster mode when set. */
  zk: { connectionString: string; sessionTimeoutMs: number; auth?: string; slotCount?: number } | null;
};

/** Environment variable → option path. */
const ENV: Record<string, string[]> = {
  KAIROS_PORT: ['port'],
  KAIROS_HOST: ['host'],
  KAIROS_DATA_DIR: ['dataDir'],
  KAIROS_NODE_ID: ['nodeId'],
  KAIROS_STORE: ['store'],
  KAIROS_LOG_LEVEL: ['logLevel'],
  KAIROS_ZK: ['zk'],
  KAIROS_ZK_SESSION_TIMEOUT: ['zkSessionTimeout'],
  KAIROS_ZK_AUTH: ['zkAuth'],
  KAIROS_ZK_SLOTS: ['zkSlotCount'],
  KAIROS_ADVERTISE_URL: ['advertiseUrl'],
  KAIROS_NODE_WEIGHT: ['nodeWeight'],
  KAIROS_NODE_LABELS: ['nodeLabels'],
  KAIROS_DRAIN_TIMEOUT: ['drainTimeout'],
  KAIROS_MAX_DECISIONS_IN_FLIGHT: ['maxDecisionsInFlight'],
  KAIROS_FIRE_LEAD: ['fireLead'],
  KAIROS_SNAPSHOT_EVERY: ['snapshotEvery'],
  KAIROS_ACK_TIMEOUT: ['subscribers', 'ackTimeout'],
  KAIROS_GROUP_GRACE: ['subscribers', 'groupGrace'],
  KAIROS_RETENTION_MAX_AGE: ['retention', 'maxAge'],
  KAIROS_RETENTION_MAX_FIRES: ['retention', 'maxFires'],
  KAIROS_RETENTION_CHECK_EVERY: ['retention', 'checkEvery'],
  KAIROS_READ_SIDE: ['readSide', 'enabled'],
  KAIROS_READ_DB: ['readSide', 'db'],
  KAIROS_FIRES_RETENTION: ['readSide', 'firesRetention'],
  KAIROS_STATS_RETENTION_MINUTE: ['readSide', 'statsRetention', 'minute'],
  KAIROS_STATS_RETENTION_HOUR: ['readSide', 'statsRetention', 'hour'],
  KAIROS_STATS_RETENTION_DAY: ['readSide', 'statsRetention', 'day'],
  KAIROS_STREAM_HEARTBEAT: ['stream', 'heartbeat'],
  KAIROS_STREAM_MAX_BUFFER: ['stream', 'maxBuffer'],
};

export const optionsFromEnv = (env: NodeJS.ProcessEnv): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(out, path, value);
  }
  return out;
};

export const readConfigFile = (file: string): Record<string, unknown> => {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ValidationError([
      { path: 'config', message: `cannot read config file ${file}: ${(err as Error).message}` },
    ]);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ValidationError([
      { path: 'config', message: `config file ${file} is not valid YAML/JSON: ${(err as Error).message}` },
    ]);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ValidationError([{ path: 'config', message: `config file ${file} must hold a mapping of options` }]);
  }
  return parsed as Record<string, unknown>;
};

/**
 * Merges the layers and validates them. Errors name the option as the user wrote it: the env var for
 * values that came from the environment, the option path otherwise.
 */
export const compileConfig = (layers: {
  file?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  flags?: Record<string, unknown>;
}): CompiledConfig => {
  const fromEnv = layers.env ? optionsFromEnv(layers.env) : {};
  const merged = deepMerge(deepMerge(layers.file ?? {}, fromEnv), layers.flags ?? {});
  const result = KairosOptions.safeParse(merged);
  if (!result.success) {
    // The env var that supplied a value, unless a flag overrode it (flags arrive with every key, most undefined).
    const envNameOf = (path: string): string | undefined =>
      Object.entries(ENV).find(
        ([, p]) =>
          p.join('.') === path && valueAt(fromEnv, p) !== undefined && valueAt(layers.flags ?? {}, p) === undefined,
      )?.[0];
    throw new ValidationError(
      fieldIssuesOf(result.error, merged).map((i) => {
        const env = envNameOf(i.path);
        return env ? { path: env, message: i.message } : i;
      }),
    );
  }
  const o = result.data;
  const dataDir = isAbsolute(o.dataDir) ? o.dataDir : resolve(o.dataDir);
  const store = o.store ?? `sqlite:${resolve(dataDir, 'kairos.db')}`;
  return {
    port: o.port,
    host: o.host,
    dataDir,
    nodeId: o.nodeId ?? safeNodeId(hostname()),
    store,
    logLevel: o.logLevel,
    zk: o.zk
      ? {
          connectionString: o.zk,
          sessionTimeoutMs: o.zkSessionTimeout,
          ...(o.zkAuth ? { auth: o.zkAuth } : {}),
          ...(o.zkSlotCount ? { slotCount: o.zkSlotCount } : {}),
        }
      : null,
    subscribers: o.subscribers,
    member: {
      weight: o.nodeWeight,
      labels: o.nodeLabels,
      ...(o.advertiseUrl ? { address: o.advertiseUrl.replace(/\/+$/, '') } : {}),
    },
    drainTimeoutMs: o.drainTimeout,
    maxDecisionsInFlight: o.maxDecisionsInFlight,
    fireLeadMs: o.fireLead ?? (isEsdbUrl(store) ? 0 : 500),
    snapshot: store.startsWith('memory:')
      ? null
      : { file: resolve(dataDir, 'node-state.snapshot'), everyMs: o.snapshotEvery },
    retention: {
      maxAgeMs: o.retention.maxAge ?? null,
      maxFires: o.retention.maxFires ?? null,
      checkEvery: o.retention.checkEvery,
    },
    readSide: o.readSide.enabled
      ? {
          db: o.readSide.db ? resolve(o.readSide.db) : resolve(dataDir, 'read.db'),
          firesKeepMs: o.readSide.firesRetention ?? null,
          statsKeepMs: o.readSide.statsRetention,
        }
      : null,
    stream: { heartbeatMs: o.stream.heartbeat, maxBufferBytes: o.stream.maxBuffer },
  };
};

const safeNodeId = (name: string): string =>
  name
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64) || 'kairos';

const setPath = (target: Record<string, unknown>, path: readonly string[], value: unknown): void => {
  let cursor = target;
  for (const key of path.slice(0, -1)) {
    const next = cursor[key];
    if (typeof next !== 'object' || next === null) cursor[key] = {};
    cursor = cursor[key] as Record<string, unknown>;
  }
  cursor[path[path.length - 1] as string] = value;
};

const valueAt = (source: Record<string, unknown>, path: readonly string[]): unknown =>
  path.reduce<unknown>((cursor, key) => (isPlainObject(cursor) ? cursor[key] : undefined), source);

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const deepMerge = (base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const current = out[k];
    out[k] = isPlainObject(current) && isPlainObject(v) ? deepMerge(current, v) : v;
  }
  return out;
};
