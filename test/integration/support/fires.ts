import { randomUUID } from 'node:crypto';
import type { FireDelivery } from '../../../src/targets/dispatcher.js';

/** One attempt of a nightly export's fire to topic `exports`, as a node hands it to its targets. */
export const exportFireOf = (overrides: Partial<FireDelivery> = {}): FireDelivery => ({
  taskId: 'nightly-export',
  taskName: 'Nightly export',
  fireId: randomUUID(),
  attempt: 1,
  trigger: 'schedule',
  scheduledAt: '2026-03-01T02:00:00.000Z',
  firedAt: '2026-03-01T02:00:00.002Z',
  deadline: Date.now() + 30_000,
  payload: { day: '2026-03-01' },
  target: { topic: 'exports' },
  node: 'node-1',
  ...overrides,
});
