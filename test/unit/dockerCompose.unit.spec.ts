import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/config/config.js';

/**
 * docker-compose.yml and the Dockerfile cannot be run here (no Docker engine on the build machine), so
 * their structure is checked instead: the services the README names exist, start order and health
 * checks hang together, host ports are distinct, the Kairos nodes agree on ZooKeeper and the store and
 * differ in identity, and every path the Dockerfile and the commands use is in the repo.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

type Service = {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
};
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown> };

// Compose resolves `<<:` merge keys (YAML 1.1), which the yaml package does with `merge: true`.
const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
const services = compose.services;
const names = Object.keys(services);
const kairosNodes = names.filter((n) => /^kairos-\d+$/.test(n));
const zooKeepers = names.filter((n) => /^zk\d+$/.test(n));
const env = (name: string): Record<string, string> => services[name]?.environment ?? {};

/** The README section's commands and table: every service name it uses. */
const readmeServices = (): string[] => {
  const readme = read('README.md');
  const start = readme.indexOf('## Run a cluster with Docker Compose');
  expect(start, 'README section "Run a cluster with Docker Compose"').toBeGreaterThan(-1);
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const mentioned = new Set<string>();
  // The service table: backticked names in the first column.
  for (const row of section.matchAll(/^\| (.+?) \|/gm))
    for (const name of (row[1] as string).matchAll(/`([a-z0-9-]+)`/g)) mentioned.add(name[1] as string);
  // The commands: `docker compose <verb> [flags] <service...>`.
  for (const command of section.matchAll(/docker compose (exec|kill|start|stop|restart|logs|up)([^\n#`]*)/g)) {
    const words = (command[2] as string).trim().split(/\s+/);
    const args: string[] = [];
    for (let i = 0; i < words.length; i++) {
      const word = words[i] as string;
      if (word === '--since' || word === '--tail') i++;
      else if (word !== '' && !word.startsWith('-')) args.push(word);
    }
    // `exec <service> <command...>`: only the first word is a service.
    for (const name of command[1] === 'exec' ? args.slice(0, 1) : args) mentioned.add(name);
  }
  return [...mentioned];
};

describe('docker-compose.yml', () => {
  it('has the ensemble, the event store, three Kairos nodes and the demo worker', () => {
    expect(zooKeepers).toEqual(['zk1', 'zk2', 'zk3']);
    expect(kairosNodes).toEqual(['kairos-1', 'kairos-2', 'kairos-3']);
    expect(names).toContain('eventstore');
    expect(names).toContain('demo-worker');
    expect(services.eventstore?.image).toMatch(/^(eventstore\/eventstore:24\.10|docker\.kurrent\.io\/.*kurrentdb)/);
    for (const zk of zooKeepers) expect(services[zk]?.image).toBe('zookeeper:3.8');
  });

  it('has every service the README mentions', () => {
    const mentioned = readmeServices();
    expect(mentioned).toEqual(
      expect.arrayContaining(['kairos-1', 'kairos-2', 'demo-worker', 'demo-direct-worker', 'eventstore', 'zk1']),
    );
    for (const name of mentioned) expect(names, `README mentions service '${name}'`).toContain(name);
  });

  it('starts services after the ones they need are healthy, and each of those has a health check', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [target, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(names, `${name} depends on ${target}`).toContain(target);
        expect(condition, `${name} → ${target}`).toBe('service_healthy');
        expect(services[target]?.healthcheck?.test, `${target} has a health check`).toBeDefined();
      }
    }
    for (const node of kairosNodes)
      expect(Object.keys(services[node]?.depends_on ?? {}).sort()).toEqual(['eventstore', ...zooKeepers].sort());
    expect(Object.keys(services['demo-worker']?.depends_on ?? {})).toEqual(kairosNodes);
    // Kairos' own check asks /readyz with node's fetch (the image has no curl), on the node's port.
    for (const node of kairosNodes) {
      const check = (services[node]?.healthcheck?.test ?? []).join(' ');
      expect(check).toMatch(/^CMD node -e .*fetch\('http:\/\/127\.0\.0\.1:(\d+)\/readyz'\)/);
      expect(check).toContain(`:${env(node).KAIROS_PORT}/readyz`);
    }
    expect((services.eventstore?.healthcheck?.test ?? []).join(' ')).toContain('/health/live');
  });

  it('publishes distinct host ports, the Kairos APIs on 8081-8083', () => {
    const hostPorts = Object.values(services).flatMap((s) => (s.ports ?? []).map((p) => p.split(':')[0]));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
    expect(kairosNodes.map((n) => services[n]?.ports)).toEqual([['8081:8080'], ['8082:8080'], ['8083:8080']]);
  });

  it('gives the Kairos nodes one ZooKeeper ensemble and one store, and each its own identity', () => {
    const envs = kairosNodes.map(env);
    expect(new Set(envs.map((e) => e.KAIROS_ZK)).size).toBe(1);
    expect(new Set(envs.map((e) => e.KAIROS_STORE)).size).toBe(1);
    expect(new Set(envs.map((e) => e.KAIROS_NODE_ID)).size).toBe(kairosNodes.length);
    const zk = envs[0]?.KAIROS_ZK ?? '';
    const [ensemble, chroot] = [zk.slice(0, zk.indexOf('/')), zk.slice(zk.indexOf('/'))];
    expect(ensemble?.split(',')).toEqual(zooKeepers.map((zk) => `${zk}:2181`));
    expect(chroot).toBe('/kairos/compose');
    expect(envs[0]?.KAIROS_STORE).toBe('esdb://eventstore:2113?tls=false');
    kairosNodes.forEach((node, i) => {
      const e = envs[i] as Record<string, string>;
      expect(e.KAIROS_NODE_ID).toBe(node);
      expect(e.KAIROS_HOST).toBe('0.0.0.0');
      // The other nodes' relays reach this node at its service name.
      expect(e.KAIROS_ADVERTISE_URL).toBe(`http://${node}:${e.KAIROS_PORT}`);
      expect(services[node]?.ports?.[0]?.split(':')[1]).toBe(e.KAIROS_PORT);
      // The node's own config validation accepts the environment it is given.
      const config = compileConfig({ env: e });
      expect(config).toMatchObject({ nodeId: node, host: '0.0.0.0', store: e.KAIROS_STORE });
      expect(config.zk?.connectionString).toBe(e.KAIROS_ZK);
    });
  });

  it('configures a three-server ZooKeeper ensemble with distinct ids', () => {
    const ids = zooKeepers.map((zk) => env(zk).ZOO_MY_ID);
    expect(ids).toEqual(['1', '2', '3']);
    for (const zk of zooKeepers) {
      const servers = env(zk).ZOO_SERVERS?.split(' ') ?? [];
      expect(servers).toEqual(zooKeepers.map((z, i) => `server.${i + 1}=${z}:2888:3888;2181`));
    }
  });

  it('runs EventStoreDB in insecure mode without projections, its data on a named volume', () => {
    expect(env('eventstore')).toMatchObject({ EVENTSTORE_INSECURE: 'true', EVENTSTORE_RUN_PROJECTIONS: 'None' });
    expect(services.eventstore?.volumes).toContain('eventstore-data:/var/lib/eventstore');
  });

  it('declares every named volume it mounts', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, service] of Object.entries(services))
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0] as string;
        if (!source.startsWith('.') && !source.startsWith('/'))
          expect(declared, `${name} mounts ${source}`).toContain(source);
      }
  });

  it('builds the Kairos image from the Dockerfile and runs scripts the build produces', () => {
    for (const node of kairosNodes) expect(services[node]).toMatchObject({ build: '.', image: 'kairos:local' });
    expect(services['demo-worker']?.image).toBe('kairos:local');
    const [program, script, ...urls] = services['demo-worker']?.command ?? [];
    expect(program).toBe('node');
    expect(existsSync(join(ROOT, sourceOf(script as string)))).toBe(true);
    expect(urls).toEqual(kairosNodes.map((n) => `http://${n}:8080`));
    // The direct-mode worker reads from the compose file's EventStoreDB, the store the nodes use.
    const [, directScript, store] = services['demo-direct-worker']?.command ?? [];
    expect(directScript).toBe(script);
    expect(store).toBe(env('kairos-1').KAIROS_STORE);
  });
});

/** `dist/x/y.js` is built from `x/y.ts` (tsconfig: rootDir ".", outDir "dist"). */
const sourceOf = (built: string): string => built.replace(/^dist\//, '').replace(/\.js$/, '.ts');

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  const stages = dockerfile.split(/^FROM /m).slice(1);

  it('builds in one stage and runs as a non-root user in another', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]).toMatch(/python3 make g\+\+/);
    expect(stages[0]).toMatch(/npm (ci|install)/);
    expect(stages[0]).toMatch(/npm run build/);
    expect(stages[1]).toMatch(/libstdc\+\+/);
    expect(stages[1]).toMatch(/^USER node$/m);
    expect(stages[1]).toMatch(/^COPY --from=build /m);
  });

  it('copies only paths that exist in the repo and that .dockerignore lets through', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const copies = instructions.filter((l) => /^COPY (?!--from)/.test(l));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const sources = copy.split(/\s+/).slice(1, -1);
      for (const source of sources) {
        expect(existsSync(join(ROOT, source)), `COPY ${source}`).toBe(true);
        expect(ignored, `.dockerignore excludes ${source}`).not.toContain(source);
      }
    }
    // The build reads these, so the context must hold them.
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'])
      expect(copies.join(' ')).toContain(needed);
  });

  it('starts `kairos start` from the built CLI', () => {
    const cmd = instructions.find((l) => l.startsWith('CMD ')) as string;
    const [program, ...rest] = JSON.parse(cmd.slice(4)) as string[];
    // node's own options (the young generation, see youngGeneration.unit.spec.ts) come before the script.
    const [script, ...args] = rest.slice(rest.findIndex((arg) => !arg.startsWith('-')));
    expect(program).toBe('node');
    expect(args).toEqual(['start']);
    expect(script).toBe(JSON.parse(read('package.json')).bin.kairos);
    expect(existsSync(join(ROOT, sourceOf(script as string)))).toBe(true);
  });
});
