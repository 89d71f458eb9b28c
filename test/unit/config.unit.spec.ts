import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isValidationError, type FieldIssue } from '../../domain/errors/index.js';
import { compileConfig, optionsFromEnv, readConfigFile } from '../../src/config/config.js';

/** The issues a config error carries, or a failure when the layers were accepted. */
const issuesOf = (compile: () => unknown): FieldIssue[] => {
  try {
    compile();
  } catch (err) {
    if (isValidationError(err)) return [...err.issues];
    throw err;
  }
  throw new Error('expected the configuration to be refused');
};

let dir: string;
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('compileConfig: defaults', () => {
  it('runs the embedded single node with nothing set', () => {
    const config = compileConfig({});
    expect(config).toEqual({
      port: 8080,
      host: '127.0.0.1',
      dataDir: resolve('./data'),
      nodeId: expect.any(String),
      store: `sqlite:${resolve('./data', 'kairos.db')}`,
      logLevel: 'info',
      subscribers: { ackTimeout: 5_000, groupGrace: 60_000 },
      zk: null,
      member: { weight: 1, labels: {} },
      drainTimeoutMs: 5_000,
      maxDecisionsInFlight: 10_000,
      fireLeadMs: 500,
      snapshot: { file: expect.stringMatching(/node-state\.snapshot$/), everyMs: 300_000 },
      retention: { maxAgeMs: null, maxFires: null, checkEvery: 100 },
      readSide: {
        db: resolve('./data', 'read.db'),
        firesKeepMs: null,
        statsKeepMs: { minute: 2 * 86_400_000, hour: 90 * 86_400_000, day: 1_826 * 86_400_000 },
      },
      stream: { heartbeatMs: 15_000, maxBufferBytes: 1_048_576 },
    });
    expect(config.nodeId).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
  });

  it('derives a valid node id from the host name', () => {
    const expected =
      hostname()
        .replace(/[^A-Za-z0-9._-]/g, '-')
        .replace(/^[^A-Za-z0-9]+/, '')
        .slice(0, 64) || 'kairos';
    expect(compileConfig({ env: {} }).nodeId).toBe(expected);
  });

  it('puts the default store in the data directory, which it makes absolute', () => {
    const config = compileConfig({ env: { KAIROS_DATA_DIR: 'relative/dir' } });
    expect(config.dataDir).toBe(resolve('relative/dir'));
    expect(config.store).toBe(`sqlite:${resolve('relative/dir', 'kairos.db')}`);
  });
});

describe('compileConfig: environment', () => {
  it('reads every KAIROS_* variable', () => {
    const config = compileConfig({
      env: {
        KAIROS_PORT: '9090',
        KAIROS_HOST: '0.0.0.0',
        KAIROS_DATA_DIR: '/var/lib/kairos',
        KAIROS_NODE_ID: 'node-7',
        KAIROS_STORE: 'memory:',
        KAIROS_LOG_LEVEL: 'debug',
        KAIROS_ACK_TIMEOUT: '2s',
        KAIROS_GROUP_GRACE: '5m',
        KAIROS_ZK: '127.0.0.1:2181,127.0.0.1:2182/kairos/prod',
        KAIROS_ZK_SESSION_TIMEOUT: '8s',
        KAIROS_ZK_AUTH: 'kairos:s3cret',
        KAIROS_ZK_SLOTS: '256',
        KAIROS_NODE_WEIGHT: '2.5',
        KAIROS_NODE_LABELS: 'zone=eu-1, gpu=true,empty=',
        KAIROS_DRAIN_TIMEOUT: '12s',
        KAIROS_MAX_DECISIONS_IN_FLIGHT: '2500',
        KAIROS_FIRE_LEAD: '0',
        KAIROS_SNAPSHOT_EVERY: '1m',
        KAIROS_ADVERTISE_URL: 'http://10.0.0.7:9090/',
        KAIROS_RETENTION_MAX_AGE: '90d',
        KAIROS_RETENTION_MAX_FIRES: '1000',
        KAIROS_RETENTION_CHECK_EVERY: '250',
        KAIROS_READ_DB: '/var/lib/kairos-read/models.db',
        KAIROS_FIRES_RETENTION: '30d',
        KAIROS_STATS_RETENTION_MINUTE: '1d',
        KAIROS_STATS_RETENTION_HOUR: '30d',
        KAIROS_STATS_RETENTION_DAY: '365d',
        KAIROS_STREAM_HEARTBEAT: '5s',
        KAIROS_STREAM_MAX_BUFFER: '65536',
      },
    });
    expect(config).toEqual({
      port: 9090,
      host: '0.0.0.0',
      dataDir: '/var/lib/kairos',
      nodeId: 'node-7',
      store: 'memory:',
      logLevel: 'debug',
      subscribers: { ackTimeout: 2_000, groupGrace: 300_000 },
      zk: {
        connectionString: '127.0.0.1:2181,127.0.0.1:2182/kairos/prod',
        sessionTimeoutMs: 8_000,
        auth: 'kairos:s3cret',
        slotCount: 256,
      },
      member: { weight: 2.5, labels: { zone: 'eu-1', gpu: 'true', empty: '' }, address: 'http://10.0.0.7:9090' },
      drainTimeoutMs: 12_000,
      maxDecisionsInFlight: 2_500,
      fireLeadMs: 0,
      snapshot: null,
      retention: { maxAgeMs: 90 * 86_400_000, maxFires: 1_000, checkEvery: 250 },
      readSide: {
        db: '/var/lib/kairos-read/models.db',
        firesKeepMs: 30 * 86_400_000,
        statsKeepMs: { minute: 86_400_000, hour: 30 * 86_400_000, day: 365 * 86_400_000 },
      },
      stream: { heartbeatMs: 5_000, maxBufferBytes: 65_536 },
    });
  });

  it('switches the read side off, and refuses bad read-side settings by variable name', () => {
    expect(compileConfig({ env: { KAIROS_READ_SIDE: 'off' } }).readSide).toBeNull();
    expect(compileConfig({ env: { KAIROS_READ_SIDE: 'on' } }).readSide).not.toBeNull();
    for (const [name, value] of [
      ['KAIROS_READ_SIDE', 'maybe'],
      ['KAIROS_FIRES_RETENTION', 'a while'],
      ['KAIROS_STATS_RETENTION_MINUTE', '-1'],
      ['KAIROS_STREAM_MAX_BUFFER', '12'],
    ] as const) {
      expect(
        issuesOf(() => compileConfig({ env: { [name]: value } })),
        `${name}=${value}`,
      ).toEqual([{ path: name, message: expect.any(String) }]);
    }
  });

  it('takes retention from a file too, and refuses a bad one by variable name', () => {
    expect(compileConfig({ file: { retention: { maxAge: '2w', maxFires: 50 } } }).retention).toEqual({
      maxAgeMs: 14 * 86_400_000,
      maxFires: 50,
      checkEvery: 100,
    });
    for (const [name, value] of [
      ['KAIROS_RETENTION_MAX_AGE', 'forever'],
      ['KAIROS_RETENTION_MAX_AGE', '500ms'],
      ['KAIROS_RETENTION_MAX_FIRES', '0'],
      ['KAIROS_RETENTION_MAX_FIRES', '2.5'],
      ['KAIROS_RETENTION_CHECK_EVERY', 'often'],
    ] as const) {
      expect(
        issuesOf(() => compileConfig({ env: { [name]: value } })),
        `${name}=${value}`,
      ).toEqual([{ path: name, message: expect.any(String) }]);
    }
    expect(issuesOf(() => compileConfig({ file: { retention: { keep: 3 } } })).map((i) => i.path)).toEqual([
      'retention.keep',
    ]);
  });

  it('takes node labels as a mapping from a file, and refuses malformed labels and weights by variable name', () => {
    expect(compileConfig({ file: { nodeLabels: { zone: 'b' }, nodeWeight: 3 } }).member).toEqual({
      weight: 3,
      labels: { zone: 'b' },
    });
    expect(compileConfig({}).member).toEqual({ weight: 1, labels: {} });
    for (const [name, value] of [
      ['KAIROS_NODE_LABELS', 'zone'],
      ['KAIROS_NODE_LABELS', '=x'],
      ['KAIROS_NODE_WEIGHT', '0'],
      ['KAIROS_NODE_WEIGHT', 'heavy'],
      ['KAIROS_DRAIN_TIMEOUT', 'later'],
      ['KAIROS_MAX_DECISIONS_IN_FLIGHT', '0'],
      ['KAIROS_MAX_DECISIONS_IN_FLIGHT', 'many'],
      ['KAIROS_FIRE_LEAD', '10s'],
      ['KAIROS_FIRE_LEAD', '-1s'],
      ['KAIROS_SNAPSHOT_EVERY', 'often'],
      ['KAIROS_ADVERTISE_URL', 'ftp://x'],
      ['KAIROS_ZK_SLOTS', '0'],
      ['KAIROS_ZK_SLOTS', '100000'],
    ] as const) {
      expect(() => compileConfig({ env: { [name]: value } }), `${name}=${value}`).toThrow(
        expect.objectContaining({ details: { issues: [expect.objectContaining({ path: name })] } }),
      );
    }
  });

  it('decides fires 500 ms ahead by default, not on EventStoreDB (one append after another), unless asked', () => {
    expect(compileConfig({}).fireLeadMs).toBe(500);
    expect(compileConfig({ env: { KAIROS_STORE: 'esdb://localhost:2113?tls=false' } }).fireLeadMs).toBe(0);
    expect(
      compileConfig({ env: { KAIROS_STORE: 'esdb://localhost:2113?tls=false', KAIROS_FIRE_LEAD: '200ms' } }).fireLeadMs,
    ).toBe(200);
  });

  it('keeps the state snapshot beside the data, saved as often as asked; none for an in-memory log', () => {
    expect(compileConfig({ env: { KAIROS_SNAPSHOT_EVERY: '2m', KAIROS_DATA_DIR: '/srv/k' } }).snapshot).toEqual({
      file: '/srv/k/node-state.snapshot',
      everyMs: 120_000,
    });
    expect(compileConfig({ env: { KAIROS_STORE: 'memory:' } }).snapshot).toBeNull();
  });

  it('ignores unrelated and empty variables', () => {
    expect(optionsFromEnv({ PATH: '/bin', KAIROS_PORT: '', KAIROS_UNKNOWN: 'x', KAIROS_HOST: 'h' })).toEqual({
      host: 'h',
    });
    expect(compileConfig({ env: { KAIROS_PORT: '' } }).port).toBe(8080);
  });

  it.each([
    ['KAIROS_PORT', 'abc'],
    ['KAIROS_PORT', '70000'],
    ['KAIROS_PORT', '-1'],
    ['KAIROS_PORT', '80.5'],
    // `z.coerce.number()` would have read a blank as 0, a random port.
    ['KAIROS_PORT', ' '],
    ['KAIROS_NODE_ID', '-leading-dash'],
    ['KAIROS_NODE_ID', 'has space'],
    ['KAIROS_LOG_LEVEL', 'loud'],
    ['KAIROS_ACK_TIMEOUT', 'soon'],
    ['KAIROS_GROUP_GRACE', '-5s'],
  ])('reports a bad %s=%j under the variable name', (name, value) => {
    const issues = issuesOf(() => compileConfig({ env: { [name]: value } }));
    expect(issues).toEqual([{ path: name, message: expect.any(String) }]);
  });

  it('reports each bad variable at once', () => {
    const issues = issuesOf(() =>
      compileConfig({ env: { KAIROS_PORT: 'x', KAIROS_LOG_LEVEL: 'loud', KAIROS_HOST: 'fine' } }),
    );
    expect(issues.map((i) => i.path).sort()).toEqual(['KAIROS_LOG_LEVEL', 'KAIROS_PORT']);
  });

  it('the error message names the variable', () => {
    expect(() => compileConfig({ env: { KAIROS_PORT: 'abc' } })).toThrow(/KAIROS_PORT/);
  });
});

describe('compileConfig: file < env < flags', () => {
  it('reads a YAML file', () => {
    const path = file('kairos.yaml', 'port: 7000\nhost: 10.0.0.1\nnodeId: from-yaml\nsubscribers:\n  ackTimeout: 3s\n');
    expect(compileConfig({ file: readConfigFile(path) })).toMatchObject({
      port: 7000,
      host: '10.0.0.1',
      nodeId: 'from-yaml',
      subscribers: { ackTimeout: 3_000, groupGrace: 60_000 },
    });
  });

  it('reads a JSON file', () => {
    const path = file('kairos.json', JSON.stringify({ port: 7001, logLevel: 'warn', store: 'memory:' }));
    expect(compileConfig({ file: readConfigFile(path) })).toMatchObject({
      port: 7001,
      logLevel: 'warn',
      store: 'memory:',
    });
  });

  it('an empty file is no options', () => {
    expect(readConfigFile(file('empty.yaml', ''))).toEqual({});
  });

  it('env overrides the file, flags override both, field by field', () => {
    const fromFile = readConfigFile(
      file(
        'layers.yaml',
        'port: 7000\nhost: file-host\nnodeId: file-node\nlogLevel: error\nsubscribers:\n  ackTimeout: 1s\n  groupGrace: 1m\n',
      ),
    );
    const env = { KAIROS_PORT: '7100', KAIROS_HOST: 'env-host', KAIROS_ACK_TIMEOUT: '2s' };
    const flags = { port: '7200', host: undefined, nodeId: undefined, logLevel: undefined };
    const config = compileConfig({ file: fromFile, env, flags });
    expect(config).toMatchObject({
      port: 7200, // flag
      host: 'env-host', // env (the flag is undefined)
      nodeId: 'file-node', // file
      logLevel: 'error', // file
      subscribers: { ackTimeout: 2_000, groupGrace: 60_000 }, // env, file
    });
    expect(compileConfig({ file: fromFile, env }).port).toBe(7100);
    expect(compileConfig({ file: fromFile }).port).toBe(7000);
  });

  it('a flag that overrides a bad env value makes it harmless', () => {
    expect(compileConfig({ env: { KAIROS_PORT: 'abc' }, flags: { port: '9000' } }).port).toBe(9000);
  });

  it('a bad env value is named by its variable even when the start command passes every flag, most undefined', () => {
    const flags = {
      port: undefined,
      host: undefined,
      dataDir: undefined,
      nodeId: undefined,
      store: undefined,
      logLevel: undefined,
    };
    expect(issuesOf(() => compileConfig({ env: { KAIROS_PORT: 'abc' }, flags })).map((i) => i.path)).toEqual([
      'KAIROS_PORT',
    ]);
  });

  it('a bad flag is named by its option', () => {
    expect(
      issuesOf(() => compileConfig({ env: { KAIROS_PORT: '9000' }, flags: { port: 'abc' } })).map((i) => i.path),
    ).toEqual(['port']);
  });
});

describe('config file errors', () => {
  it('a bad value in the file is named by its option path', () => {
    const fromFile = readConfigFile(file('bad-values.yaml', 'port: lots\nsubscribers:\n  ackTimeout: whenever\n'));
    expect(
      issuesOf(() => compileConfig({ file: fromFile }))
        .map((i) => i.path)
        .sort(),
    ).toEqual(['port', 'subscribers.ackTimeout']);
  });

  it('an empty port in the file is refused, not read as port 0', () => {
    expect(
      issuesOf(() => compileConfig({ file: readConfigFile(file('null-port.yaml', 'port:\n')) })).map((i) => i.path),
    ).toEqual(['port']);
  });

  it('an unknown key is refused and named, at the top and nested', () => {
    const fromFile = readConfigFile(file('unknown.yaml', 'port: 8081\nprot: 8082\nsubscribers:\n  ackTimout: 1s\n'));
    const issues = issuesOf(() => compileConfig({ file: fromFile }));
    expect(issues.map((i) => i.path).sort()).toEqual(['prot', 'subscribers.ackTimout']);
    for (const issue of issues) expect(issue.message).toMatch(/not a known field/);
  });

  it('a file that is not YAML or JSON is refused, naming the file', () => {
    const path = file('broken.yaml', 'port: [8080\n');
    const issues = issuesOf(() => readConfigFile(path));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toContain(path);
    expect(issues[0]?.message).toMatch(/not valid YAML\/JSON/);
  });

  it('a file holding a list or a scalar is refused, naming the file', () => {
    for (const [name, text] of [
      ['list.yaml', '- port: 8080\n'],
      ['scalar.json', '"port"'],
    ] as const) {
      const path = file(name, text);
      const issues = issuesOf(() => readConfigFile(path));
      expect(issues[0]?.message).toContain(path);
      expect(issues[0]?.message).toMatch(/mapping/);
    }
  });

  it('a missing file is refused, naming the file', () => {
    const path = join(dir, 'missing.yaml');
    const issues = issuesOf(() => readConfigFile(path));
    expect(issues[0]?.message).toContain(path);
  });
});
