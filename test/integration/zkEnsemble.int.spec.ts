import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startEnsemble } from '../../scripts/zk/ensemble.js';
import { serverMode } from '../../scripts/zk/fourLetterWord.js';
import { NOT_INSTALLED_MESSAGE, zooKeeperClassPath } from '../../scripts/zk/zooKeeperJars.js';
import { connectZk } from '../../src/coordination/zookeeper/zkClient.js';
import { useZkEnsemble } from './support/zkEnsemble.js';

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'kairos-zk-spec-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('ZooKeeper installation check', () => {
  it('says how to install ZooKeeper when the jars are missing', async () => {
    const empty = mkdtempSync(join(tmp, 'java-'));
    expect(() => zooKeeperClassPath(empty)).toThrow(NOT_INSTALLED_MESSAGE);
    await expect(startEnsemble({ javaDir: empty })).rejects.toThrow(
      'ZooKeeper is not installed: run `apt-get install -y zookeeper` (Debian) — .ci/run does this',
    );
  });

  it('builds the class path from the Debian jars', () => {
    const fake = mkdtempSync(join(tmp, 'java-'));
    for (const jar of ['zookeeper.jar', 'zookeeper-jute.jar']) writeFileSync(join(fake, jar), '');
    expect(zooKeeperClassPath(fake)).toBe(`${fake}/zookeeper.jar:${fake}/zookeeper-jute.jar`);
  });
});

describe('a 3-server ensemble', () => {
  const zk = useZkEnsemble();

  it('listens on loopback only and elects one leader', async () => {
    expect(zk.ensemble.connectionString).toMatch(/^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}$/);
    const modes = await Promise.all(zk.ensemble.servers.map((s) => serverMode(s.client)));
    expect(modes.sort()).toEqual(['follower', 'follower', 'leader']);
  });

  it('serves clients with one server down and takes it back', async () => {
    await zk.ensemble.stopServer(0);
    expect(zk.ensemble.isRunning(0)).toBe(false);
    const client = await connectZk({ connectionString: `${zk.ensemble.connectionString}/kairos/one-down` });
    try {
      await client.create('/still-writable');
      await zk.ensemble.startServer(0);
      expect(await serverMode(zk.ensemble.servers[0]?.client ?? 0)).toMatch(/leader|follower/);
    } finally {
      await client.close();
    }
  });
});

describe('the ensemble CLI', () => {
  it('starts a detached ensemble that outlives it, and stops it', async () => {
    const dir = join(tmp, 'cli');
    const cli = [process.execPath, '--import', 'tsx', 'scripts/zk/ensemble.ts'] as const;
    const basePort = 20_000 + Math.floor(Math.random() * 5_000);
    const started = await run(cli[0], [
      ...cli.slice(1),
      'start',
      '--dir',
      dir,
      '--servers',
      '1',
      '--base-port',
      `${basePort}`,
    ]);
    expect(started.stdout).toContain(`KAIROS_ZK=127.0.0.1:${basePort}/kairos/local`);
    expect(await serverMode(basePort)).toBe('standalone');
    const stopped = await run(cli[0], [...cli.slice(1), 'stop', '--dir', dir]);
    expect(stopped.stdout).toContain('stopped 1 ZooKeeper server(s)');
    expect(await serverMode(basePort)).toBeNull();
  });
});
