import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEsdbStandIn, type EsdbStandIn } from '../support/esdbStandIn/index.js';
import { startConsumer, type ConsumerProcess } from './support/consumerProcess.js';
import {
  api,
  freePort,
  outcomesOf,
  readLog,
  runCli,
  sleep,
  startNodeProcess,
  tempDir,
  type NodeProcess,
} from './support/nodeProcess.js';

/**
 * Acceptance (issue 4): subscribers in direct mode as separate OS processes, reading fires from the log
 * (EventStoreDB protocol stand-in) through a persistent subscription, never talking to the node. Two
 * consumers in one group: each fire handled once; one killed mid-handling → the other gets the fire;
 * outcomes reach the task stream and `kairos history`.
 */
describe('direct-mode subscribers against a node on EventStoreDB (stand-in)', () => {
  const dir = tempDir('kairos-e2e-direct-');
  let standIn: EsdbStandIn;
  let node: NodeProcess;
  const consumers: ConsumerProcess[] = [];
  const consumer = async (options: Omit<Parameters<typeof startConsumer>[0], 'store'>) => {
    const c = await startConsumer({ ...options, store: standIn.url });
    consumers.push(c);
    return c;
  };

  beforeAll(async () => {
    standIn = await startEsdbStandIn();
    node = await startNodeProcess({ dataDir: dir.path, port: await freePort(), env: { KAIROS_STORE: standIn.url } });
  });
  afterEach(async () => {
    for (const c of consumers.splice(0)) await c.kill('SIGKILL');
  });
  afterAll(async () => {
    await node?.kill('SIGTERM');
    await standIn?.stop();
    dir.remove();
  });

  it('gives each fire to one consumer of the group, and both take a share', async () => {
    const a = await consumer({ group: 'billing', topics: ['invoices'], id: 'direct-a' });
    const b = await consumer({ group: 'billing', topics: ['invoices'], id: 'direct-b' });
    await api(node.url, 'POST', '/api/tasks', {
      id: 'invoice-run',
      schedule: { every: '250ms' },
      target: { topic: 'invoices' },
      overlap: 'allow',
    });
    await sleep(5_000);
    await api(node.url, 'POST', '/api/tasks/invoice-run/pause');
    await sleep(1_500);

    const log = await readLog(node.url);
    const fired = log.filter((e) => e.type === 'TaskFired' && e.data.taskId === 'invoice-run');
    const succeeded = log.filter((e) => e.type === 'TaskSucceeded' && e.data.taskId === 'invoice-run');
    expect(fired.length).toBeGreaterThanOrEqual(12);
    expect(succeeded).toHaveLength(fired.length);

    const handledBy = (c: ConsumerProcess) =>
      c.lines.filter((l) => l.event === 'handled' && l.taskId === 'invoice-run').map((l) => l.fireId!);
    const all = [...handledBy(a), ...handledBy(b)];
    expect(all.sort()).toEqual(fired.map((e) => e.data.fireId as string).sort());
    expect(handledBy(a).length).toBeGreaterThan(0);
    expect(handledBy(b).length).toBeGreaterThan(0);
    for (const s of succeeded) {
      const [detail] = s.data.details as Array<{ group: string; consumer: string }>;
      expect(detail!.group).toBe('billing');
      expect(handledBy(detail!.consumer === 'direct-a' ? a : b)).toContain(s.data.fireId);
    }
  });

  it('gives a fire to the other consumer when the one handling it is killed, and shows it in kairos history', async () => {
    const slow = await consumer({
      group: 'reports',
      topics: ['month-end'],
      id: 'direct-slow',
      mode: 'slow',
      env: { HOLD_MS: '60000' },
    });
    const rescuer = await consumer({ group: 'reports', topics: ['month-end'], id: 'direct-rescuer' });
    await api(node.url, 'POST', '/api/tasks', {
      id: 'month-end',
      schedule: { every: '1h' },
      target: { topic: 'month-end' },
      timeout: '1m',
    });
    // Round robin may hand the fire to either consumer: trigger until the slow one has one.
    let fireId: string | undefined;
    for (let i = 0; i < 10 && fireId === undefined; i++) {
      const fired = await api<{ fireId: string }>(node.url, 'POST', '/api/tasks/month-end/trigger');
      const taken = await Promise.race([
        slow.waitFor((l) => l.event === 'received' && l.fireId === fired.fireId, 5_000).then(() => true),
        rescuer.waitFor((l) => l.event === 'handled' && l.fireId === fired.fireId, 5_000).then(() => false),
      ]);
      if (taken) fireId = fired.fireId;
    }
    expect(fireId).toBeDefined();
    await slow.kill('SIGKILL');
    await rescuer.waitFor((l) => l.event === 'handled' && l.fireId === fireId);
    await sleep(1_000);

    const outcomes = outcomesOf(await readLog(node.url), fireId);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({
      type: 'TaskSucceeded',
      data: { attempt: 1, details: [{ group: 'reports', consumer: 'direct-rescuer', status: 'succeeded' }] },
    });
    // The slow consumer never finished it; the rescuer handled it once.
    expect(slow.lines.filter((l) => l.event === 'handled')).toEqual([]);
    expect(rescuer.lines.filter((l) => l.event === 'handled' && l.fireId === fireId)).toHaveLength(1);

    const history = await runCli(['history', 'month-end', '--json', '--url', node.url], {
      cwd: dir.path,
      timeoutMs: 30_000,
    });
    expect(history.code, history.stderr).toBe(0);
    const fires = (JSON.parse(history.stdout) as { fires: Array<Record<string, unknown>> }).fires;
    expect(fires.find((f) => f.fireId === fireId)).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      details: [{ group: 'reports', consumer: 'direct-rescuer', status: 'succeeded' }],
    });
  });
});
