import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startConsumer, type ConsumerProcess } from './support/consumerProcess.js';
import {
  api,
  freePort,
  outcomesOf,
  readLog,
  sleep,
  startNodeProcess,
  tempDir,
  type NodeProcess,
} from './support/nodeProcess.js';

/**
 * Acceptance (issue 2): business subscribers as separate OS processes against the real node. Two
 * consumers in one group and one in another: each fire handled once per group; a consumer killed
 * mid-handling → the fire is redelivered to the other consumer of its group; failures drive retries
 * and are recorded.
 */
describe('topic subscribers against a running node', () => {
  const dir = tempDir('kairos-e2e-subs-');
  let node: NodeProcess;
  const consumers: ConsumerProcess[] = [];
  const consumer = async (...args: Parameters<typeof startConsumer>) => {
    const c = await startConsumer(...args);
    consumers.push(c);
    return c;
  };

  beforeAll(async () => {
    node = await startNodeProcess({ dataDir: dir.path, port: await freePort(), env: { KAIROS_ACK_TIMEOUT: '2s' } });
  });
  afterEach(async () => {
    for (const c of consumers.splice(0)) await c.kill('SIGKILL');
  });
  afterAll(async () => {
    await node?.kill('SIGTERM');
    dir.remove();
  });

  it('delivers each fire once per consumer group, spread over the group’s consumers', async () => {
    const a1 = await consumer({ url: node.url, group: 'billing', topics: ['fanout'], id: 'a1' });
    const a2 = await consumer({ url: node.url, group: 'billing', topics: ['fanout'], id: 'a2' });
    const b1 = await consumer({ url: node.url, group: 'audit', topics: ['fanout'], id: 'b1' });
    await api(node.url, 'POST', '/api/tasks', {
      id: 'fanout-task',
      schedule: { every: '200ms' },
      target: { topic: 'fanout' },
      overlap: 'allow',
    });
    await sleep(4_000);
    await api(node.url, 'POST', '/api/tasks/fanout-task/pause');
    await sleep(1_000);

    const log = await readLog(node.url);
    const fired = log
      .filter((e) => e.type === 'TaskFired' && e.data.taskId === 'fanout-task')
      .map((e) => e.data.fireId as string);
    const succeeded = log.filter((e) => e.type === 'TaskSucceeded' && e.data.taskId === 'fanout-task');
    expect(fired.length).toBeGreaterThanOrEqual(15);
    expect(succeeded).toHaveLength(fired.length);

    const handledBy = (cs: ConsumerProcess[]) =>
      cs.flatMap((c) =>
        c.lines.filter((l) => l.event === 'handled' && l.taskId === 'fanout-task').map((l) => l.fireId),
      );
    const groupA = handledBy([a1, a2]);
    const groupB = handledBy([b1]);
    expect([...groupA].sort()).toEqual([...fired].sort());
    expect([...groupB].sort()).toEqual([...fired].sort());
    // Both consumers of the group took a share.
    expect(handledBy([a1]).length).toBeGreaterThan(0);
    expect(handledBy([a2]).length).toBeGreaterThan(0);
    // Each success names both groups.
    for (const s of succeeded)
      expect((s.data.details as Array<{ group: string }>).map((d) => d.group).sort()).toEqual(['audit', 'billing']);
  });

  it('redelivers a fire to another consumer of the group when the one handling it is killed', async () => {
    const slow = await consumer({
      url: node.url,
      group: 'reports',
      topics: ['kill-me'],
      id: 'slow',
      mode: 'slow',
      env: { HOLD_MS: '60000' },
    });
    await api(node.url, 'POST', '/api/tasks', {
      id: 'kill-task',
      schedule: { every: '1h' },
      target: { topic: 'kill-me' },
      timeout: '1m',
    });
    const { fireId } = await api<{ fireId: string }>(node.url, 'POST', '/api/tasks/kill-task/trigger');
    await slow.waitFor((l) => l.event === 'received' && l.fireId === fireId);
    const rescuer = await consumer({ url: node.url, group: 'reports', topics: ['kill-me'], id: 'rescuer' });
    await slow.kill('SIGKILL');
    await rescuer.waitFor((l) => l.event === 'handled' && l.fireId === fireId);
    await sleep(300);

    const outcomes = outcomesOf(await readLog(node.url), fireId);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({
      type: 'TaskSucceeded',
      data: { attempt: 1, details: [{ group: 'reports', consumer: 'rescuer', status: 'succeeded' }] },
    });
  });

  it('records failures and retries them by the task’s policy until one succeeds', async () => {
    const picky = await consumer({
      url: node.url,
      group: 'ledger',
      topics: ['flaky'],
      id: 'picky',
      mode: 'fail-before',
      env: { SUCCEED_AT: '3' },
    });
    await api(node.url, 'POST', '/api/tasks', {
      id: 'flaky-task',
      schedule: { every: '1h' },
      target: { topic: 'flaky' },
      retry: { maxAttempts: 5, backoff: { initial: '200ms', jitter: 0 } },
    });
    const { fireId } = await api<{ fireId: string }>(node.url, 'POST', '/api/tasks/flaky-task/trigger');
    await picky.waitFor((l) => l.event === 'handled' && l.fireId === fireId);
    await sleep(300);

    const log = await readLog(node.url);
    const ofFire = log
      .filter((e) => e.data.fireId === fireId)
      .map((e) => [e.type, e.data.attempt, e.type === 'TaskFailed' ? e.data.message : undefined]);
    expect(ofFire).toEqual([
      ['TaskFired', 1, undefined],
      ['TaskFailed', 1, expect.stringContaining('refused attempt 1')],
      ['TaskFired', 2, undefined],
      ['TaskFailed', 2, expect.stringContaining('refused attempt 2')],
      ['TaskFired', 3, undefined],
      ['TaskSucceeded', 3, undefined],
    ]);
    const failed = log.filter((e) => e.type === 'TaskFailed' && e.data.fireId === fireId);
    for (const f of failed) expect(f.data.willRetryAt).toBeTypeOf('string');
    const history = await api<{ fires: Array<{ fireId: string; status: string; attempts: number }> }>(
      node.url,
      'GET',
      '/api/tasks/flaky-task/history',
    );
    expect(history.fires.find((f) => f.fireId === fireId)).toMatchObject({ status: 'succeeded', attempts: 3 });
  });
});
