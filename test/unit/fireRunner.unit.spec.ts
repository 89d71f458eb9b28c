import { describe, expect, it } from 'vitest';
import { FireRunner, type Outcome, type ReceivedFire } from '../../src/client/fireRunner.js';
import type { FireMessage } from '../../src/targets/topic/protocol.js';

const fireMessage = (deliveryId: string, fireId = 'f-1'): FireMessage => ({
  v: 1,
  type: 'fire',
  deliveryId,
  fireId,
  attempt: 1,
  taskId: 'report',
  topic: 'reports',
  scheduledAt: '2026-12-07T22:00:00.000Z',
  firedAt: '2026-12-07T22:00:00.002Z',
  trigger: 'schedule',
  payload: { n: 1 },
  deadline: Date.UTC(2026, 11, 7, 22, 5),
});

/** A handler that waits until released, and what it saw. */
const heldHandler = () => {
  const seen: ReceivedFire[] = [];
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  return { seen, release: () => release(), handler: async (fire: ReceivedFire) => (seen.push(fire), released) };
};

describe('FireRunner', () => {
  it('hands the handler the fire without the envelope, and answers every delivery of it with the one outcome', async () => {
    const { seen, release, handler } = heldHandler();
    const runner = new FireRunner(handler, 10);
    const replies: Array<[string, Outcome]> = [];
    const reply = (deliveryId: string, outcome: Outcome) => replies.push([deliveryId, outcome]);
    runner.receive(fireMessage('d-1'), reply);
    runner.receive(fireMessage('d-2'), reply);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ fireId: 'f-1', attempt: 1, taskId: 'report', payload: { n: 1 } });
    expect(seen[0]).not.toHaveProperty('deliveryId');
    expect(replies).toEqual([
      ['d-1', { status: 'succeeded' }],
      ['d-2', { status: 'succeeded' }],
    ]);
    runner.receive(fireMessage('d-3'), reply);
    expect(replies.at(-1)).toEqual(['d-3', { status: 'succeeded' }]);
  });

  it('gives a handler that looks at its signal only after an abort a signal already aborted, with the reason', async () => {
    const { seen, release, handler } = heldHandler();
    const runner = new FireRunner(handler, 10);
    runner.receive(fireMessage('d-1'), () => undefined);
    const reason = new Error('deadline passed');
    runner.abort('f-1', 1, reason);
    runner.abort('f-1', 1, new Error('a second abort changes nothing'));
    const signal = (seen[0] as ReceivedFire).signal;
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    release();
  });

  it('aborts a signal the handler already holds when the hub withdraws the last delivery wanting its outcome', async () => {
    const { seen, release, handler } = heldHandler();
    const runner = new FireRunner(handler, 10);
    runner.receive(fireMessage('d-1'), () => undefined);
    runner.receive(fireMessage('d-2'), () => undefined);
    const signal = (seen[0] as ReceivedFire).signal;
    expect(signal).toBe((seen[0] as ReceivedFire).signal);
    runner.cancel('d-1');
    expect(signal.aborted).toBe(false);
    runner.cancel('d-2');
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('delivery cancelled by the hub');
    release();
  });
});
