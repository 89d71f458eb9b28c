import { defineConfig } from 'vitest/config';

// Test tiers by file suffix (see docs/testing.md): unit (pure, simulated clock), int (real SQLite,
// real sockets, real ZooKeeper), e2e (the built node as OS processes), chaos (a cluster of node
// processes on a real ZooKeeper ensemble, under faults).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/**/*.unit.spec.ts'], testTimeout: 10_000 } },
      { test: { name: 'int', include: ['test/**/*.int.spec.ts'], testTimeout: 60_000, hookTimeout: 60_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.e2e.spec.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // e2e files start whole nodes; running two at once on two cores distorts timing.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        test: {
          name: 'chaos',
          include: ['test/chaos/**/*.chaos.spec.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // One cluster at a time: the scenarios measure fail-over times on two cores.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
