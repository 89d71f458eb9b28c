import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TaskEvent, taskStreamOf, type TaskEventData } from '../../domain/task/events.js';
import type { VerifyReport } from '../../domain/verify/verifyLog.js';
import { startKairos, type RunningKairos } from '../../src/app/startKairos.js';
import { compileConfig } from '../../src/config/config.js';
import { exportLog } from '../../src/store/ndjson/exportLog.js';
import type { LogLine } from '../../src/store/ndjson/logLine.js';
import { openEventStore } from '../../src/store/openEventStore.js';
import { verifyStore } from '../../src/verify/verifyStore.js';
import { startEsdbStandIn } from '../support/esdbStandIn/index.js';
import { waitUntil } from './support/waiting.js';

/**
 * Retention on a real node (real clock, real sockets, a webhook target answering 204), on the SQLite
 * log and on the EventStoreDB log (the stand-in, whose `$all` still shows truncated events): a task
 * fires many times with `KAIROS_RETENTION_MAX_FIRES=5`; its stream stays bounded, history shows the
 * last fires, the capture holds its definitions and owners, verify is clean, and a restart goes on
 * with no tick fired twice or lost.
 */
const PERIOD = 200;
const MAX_FIRES = 5;
const CHECK_EVERY = 10;

type Fire = { fireId: string; scheduledAt: string; trigger: string };
type HistoryBody = { fires: Array<{ scheduledAt: string; status: string; attempts: number }> };

for (const log of ['sqlite', 'esdb'] as const) {
  describe(`retention on the ${log} log`, () => {
    let dir: string;
    let webhook: Server;
    let webhookUrl: string;
    let received: Fire[];
    let stopStandIn: (() => Promise<void>) | undefined;
    let storeUrl: string;
    let running: RunningKairos | undefined;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'kairos-retention-'));
      received = [];
      webhook = createServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          received.push(JSON.parse(body) as Fire);
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
      webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/fire`;
      if (log === 'esdb') {
        const standIn = await startEsdbStandIn();
        storeUrl = standIn.url;
        stopStandIn = () => standIn.stop();
      } else {
        storeUrl = `sqlite:${join(dir, 'kairos.db')}`;
      }
    });

    afterEach(async () => {
      await running?.close();
      running = undefined;
      await new Promise((resolve) => webhook.close(resolve));
      await stopStandIn?.();
      stopStandIn = undefined;
      rmSync(dir, { recursive: true, force: true });
    });

    const start = async (): Promise<RunningKairos> => {
      running = await startKairos(
        compileConfig({
          env: { KAIROS_RETENTION_MAX_FIRES: String(MAX_FIRES), KAIROS_RETENTION_CHECK_EVERY: String(CHECK_EVERY) },
          flags: { port: 0, host: '127.0.0.1', dataDir: dir, store: storeUrl, nodeId: 'keeper', logLevel: 'silent' },
        }),
      );
      return running;
    };

    const call = async <T>(kairos: RunningKairos, method: string, path: string, json?: unknown): Promise<T> => {
      const res = await fetch(`${kairos.url}${path}`, {
        method,
        headers: { 'x-kairos-actor': 'alice', ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      });
      expect(res.status, `${method} ${path}`).toBeLessThan(300);
      return (await res.json()) as T;
    };

    /** Distinct fires the webhook got (a fire delivered again after the restart has the same id). */
    const fires = (): Fire[] => [...new Map(received.map((f) => [f.fireId, f])).values()];

    const stream = async (kairos: RunningKairos): Promise<TaskEvent[]> =>
      (await kairos.store.readStream(taskStreamOf('beat'))).map((e) => TaskEvent.parse({ type: e.type, data: e.data }));

    it('keeps the stream bounded and the definitions and owners, and a restart goes on', async () => {
      const first = await start();
      await call(first, 'POST', '/api/tasks', {
        id: 'beat',
        schedule: { every: `${PERIOD}ms` },
        target: { http: { url: webhookUrl } },
        misfire: { policy: 'fire-all' },
        overlap: 'allow',
        timeout: '5s',
      });
      await call(first, 'POST', '/api/tasks/beat/pause', { reason: 'checking the receiver' });
      await call(first, 'POST', '/api/tasks/beat/resume');
      await waitUntil(() => fires().length >= 40, '40 fires', 30_000);

      const kept = await stream(first);
      const last = await first.store.streamRevision(taskStreamOf('beat'));
      expect(Number(last)).toBeGreaterThan(80);
      expect(kept.length).toBeLessThanOrEqual(2 * MAX_FIRES + CHECK_EVERY + 3);
      const captures = kept.filter((e) => e.type === 'TaskStateCaptured');
      expect(captures.length).toBeGreaterThan(0);
      const { history } = (captures.at(-1) as { data: TaskEventData<'TaskStateCaptured'> }).data;
      expect(history.definitions.map((d) => [d.type, d.actor, d.reason])).toEqual([
        ['TaskCreated', 'user:alice', undefined],
        ['TaskPaused', 'user:alice', 'checking the receiver'],
        ['TaskResumed', 'user:alice', undefined],
      ]);
      expect(history.ownership).toMatchObject([{ type: 'TaskAssigned', node: 'keeper', reason: 'start' }]);

      // `kairos history` shows the last fires; `kairos verify` finds nothing wrong.
      const shown = await call<HistoryBody>(first, 'GET', `/api/tasks/beat/history?limit=${MAX_FIRES}`);
      expect(shown.fires).toHaveLength(MAX_FIRES);
      expect(shown.fires.every((f) => f.status === 'succeeded' || f.status === 'in-flight')).toBe(true);
      expect(Date.parse(shown.fires[0]?.scheduledAt as string)).toBeGreaterThan(
        Date.parse(fires().at(-1)?.scheduledAt as string) - 10 * PERIOD,
      );
      expect((await call<VerifyReport>(first, 'GET', '/api/verify')).violations).toEqual([]);

      // Down for longer than the misfire threshold (1 s): the restart replays the truncated stream and
      // catches the missed ticks up, late.
      await first.close();
      running = undefined;
      const before = fires().length;
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const second = await start();
      await waitUntil(() => fires().length >= before + 20, '20 more fires', 30_000);
      await second.close();
      running = undefined;

      const ticks = fires()
        .map((f) => Date.parse(f.scheduledAt))
        .sort((a, b) => a - b);
      // Every tick from the first to the last reached the webhook, each with one fire id.
      expect(ticks.slice(1).map((t, i) => t - (ticks[i] as number))).toEqual(ticks.slice(1).map(() => PERIOD));
      expect(fires().some((f) => f.trigger === 'catch-up')).toBe(true);

      // The log as `kairos verify --store` reads it with no node running.
      const store = await openEventStore(storeUrl);
      try {
        expect((await verifyStore(store)).violations).toEqual([]);
        const after = (await store.readStream(taskStreamOf('beat'))).map((e) =>
          TaskEvent.parse({ type: e.type, data: e.data }),
        );
        const latest = after.findLast((e) => e.type === 'TaskStateCaptured') as {
          data: TaskEventData<'TaskStateCaptured'>;
        };
        // The restart's claim is in it (after a release if nothing was in flight at the stop).
        const owners = latest.data.history.ownership;
        expect(owners[0]).toMatchObject({ type: 'TaskAssigned', node: 'keeper' });
        expect(owners.at(-1)).toMatchObject({ type: 'TaskReassigned', node: 'keeper' });
        expect(owners.at(-1)?.epoch).toBeGreaterThan(owners[0]?.epoch as number);

        // An export holds the stream from where its reads start, though EventStoreDB's $all still
        // holds the truncated events.
        const file = join(dir, 'log.ndjson');
        const out = createWriteStream(file);
        await exportLog(store, out);
        out.end();
        await finished(out);
        const exported = readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as LogLine)
          .filter((l) => l.stream === taskStreamOf('beat'))
          .map((l) => l.revision);
        expect(exported).toEqual(after.map((_, i) => exported[0]! + i));
        expect(exported[0]).toBe(Number((await store.readStream(taskStreamOf('beat'), { maxCount: 1 }))[0]?.revision));
        if (log === 'esdb') expect((await store.readAll()).length).toBeGreaterThan(exported.length + 50);
      } finally {
        await store.close();
      }
    });
  });
}
