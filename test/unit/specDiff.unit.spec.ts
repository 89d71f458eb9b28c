import { describe, expect, it } from 'vitest';
import { SECRET_SET } from '../../domain/projections/redaction.js';
import { SECRET_CHANGED, sealSpec, sealedSpecDiff, specDiff } from '../../domain/projections/specDiff.js';
import { spec } from './support/taskFixtures.js';

const SECRET = 'whsec-0123456789-abcdef';
const OTHER_SECRET = 'whsec-fedcba-9876543210';
const hook = (secret?: string) => ({ http: { url: 'https://hooks.example/run', ...(secret ? { secret } : {}) } });

describe('specDiff', () => {
  it('lists every field of a created task, absent before: null', () => {
    expect(specDiff(null, spec())).toEqual([
      { path: 'id', before: null, after: 't1' },
      { path: 'labels', before: null, after: {} },
      { path: 'misfire.maxCatchUp', before: null, after: 100 },
      { path: 'misfire.policy', before: null, after: 'fire-once' },
      { path: 'misfire.threshold', before: null, after: 1_000 },
      { path: 'overlap', before: null, after: 'skip' },
      { path: 'retry.backoff.initial', before: null, after: 1_000 },
      { path: 'retry.backoff.jitter', before: null, after: 0.2 },
      { path: 'retry.backoff.max', before: null, after: 300_000 },
      { path: 'retry.backoff.multiplier', before: null, after: 2 },
      { path: 'retry.maxAttempts', before: null, after: 1 },
      { path: 'schedule.every', before: null, after: 1_000 },
      { path: 'target.topic', before: null, after: 'jobs' },
      { path: 'timeout', before: null, after: 60_000 },
    ]);
  });

  it('finds nothing between equal documents, whatever order their keys were built in', () => {
    const a = spec({ labels: { team: 'ops', tier: 'gold' }, payload: { b: 1, a: 2 } });
    const b = spec({ payload: { a: 2, b: 1 }, labels: { tier: 'gold', team: 'ops' } });
    expect(specDiff(a, b)).toEqual([]);
  });

  it('shows a schedule of another kind leaf by leaf', () => {
    expect(specDiff(spec(), spec({ schedule: { cron: '*/5 * * * *' } }))).toEqual([
      { path: 'schedule.cron', before: null, after: '*/5 * * * *' },
      { path: 'schedule.every', before: 1_000, after: null },
      { path: 'schedule.timezone', before: null, after: 'UTC' },
    ]);
  });

  it('shows nested retry fields by their dot paths', () => {
    const before = spec({ retry: { maxAttempts: 3 } });
    const after = spec({ retry: { maxAttempts: 5, backoff: { initial: '2s', multiplier: 3 } } });
    expect(specDiff(before, after)).toEqual([
      { path: 'retry.backoff.initial', before: 1_000, after: 2_000 },
      { path: 'retry.backoff.multiplier', before: 2, after: 3 },
      { path: 'retry.maxAttempts', before: 3, after: 5 },
    ]);
  });

  it('shows a topic target replaced by a webhook', () => {
    expect(specDiff(spec(), spec({ target: hook() }))).toEqual([
      { path: 'target.http.headers', before: null, after: {} },
      { path: 'target.http.method', before: null, after: 'POST' },
      { path: 'target.http.timeout', before: null, after: 10_000 },
      { path: 'target.http.url', before: null, after: 'https://hooks.example/run' },
      { path: 'target.topic', before: 'jobs', after: null },
    ]);
  });

  it('goes into payload objects, compares arrays whole, and shows a value of another kind whole', () => {
    const before = spec({ payload: { region: 'eu', tags: ['a'], limits: { rows: 10 } } });
    const after = spec({ payload: { region: 'us', tags: ['a', 'b'], limits: { rows: 10 } } });
    expect(specDiff(before, after)).toEqual([
      { path: 'payload.region', before: 'eu', after: 'us' },
      { path: 'payload.tags', before: ['a'], after: ['a', 'b'] },
    ]);
    expect(specDiff(spec(), spec({ payload: { region: 'eu' } }))).toEqual([
      { path: 'payload', before: null, after: { region: 'eu' } },
    ]);
  });

  it('always shows a change between different documents: an empty object, a null against a missing key', () => {
    expect(specDiff(spec(), spec({ retention: {} }))).toEqual([{ path: 'retention', before: null, after: {} }]);
    expect(specDiff(spec({ payload: { a: null } }), spec({ payload: {} }))).toEqual([
      { path: 'payload', before: { a: null }, after: {} },
    ]);
  });

  it('writes keys that are not plain names in brackets, so a path names one field', () => {
    expect(specDiff(spec(), spec({ labels: { 'app.kubernetes.io/name': 'billing' } }))).toEqual([
      { path: 'labels["app.kubernetes.io/name"]', before: null, after: 'billing' },
    ]);
  });

  it('sorts by path, the same way every time', () => {
    const before = spec({ labels: { z: '1', a: '1' }, timeout: '1s', overlap: 'allow' });
    const after = spec({ labels: { a: '2', z: '2' }, timeout: '2s', overlap: 'skip' });
    const paths = specDiff(before, after).map((c) => c.path);
    expect(paths).toEqual(['labels.a', 'labels.z', 'overlap', 'timeout']);
    expect(specDiff(before, after)).toEqual(specDiff(before, after));
  });
});

describe('webhook secrets', () => {
  it('show as set when added, as changed when replaced, as unset when removed; never their value', () => {
    const none = spec({ target: hook() });
    const one = spec({ target: hook(SECRET) });
    const other = spec({ target: hook(OTHER_SECRET) });
    const diffs = [
      specDiff(none, one),
      specDiff(one, other),
      specDiff(one, none),
      specDiff(null, one),
      specDiff(one, spec()),
    ];
    expect(diffs[0]).toEqual([{ path: 'target.http.secret', before: null, after: SECRET_SET }]);
    expect(diffs[1]).toEqual([{ path: 'target.http.secret', before: SECRET_CHANGED, after: SECRET_CHANGED }]);
    expect(diffs[2]).toEqual([{ path: 'target.http.secret', before: SECRET_SET, after: null }]);
    expect(diffs[3]).toContainEqual({ path: 'target.http.secret', before: null, after: SECRET_SET });
    expect(diffs[4]).toContainEqual({ path: 'target.http.secret', before: SECRET_SET, after: null });
    expect(specDiff(one, spec({ target: hook(SECRET) }))).toEqual([]);
    const text = JSON.stringify(diffs);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(OTHER_SECRET);
  });

  it('are sealed for storage: redacted, with only a hash to tell a replaced one', () => {
    const sealed = sealSpec(spec({ target: hook(SECRET) }));
    expect(JSON.stringify(sealed)).not.toContain(SECRET);
    expect(sealed.secretHash).toEqual(expect.any(Number));
    expect(sealSpec(spec()).secretHash).toBeNull();
    // Stored as JSON and read back, a sealed spec diffs as the spec did.
    const stored = JSON.parse(JSON.stringify(sealed)) as typeof sealed;
    expect(sealedSpecDiff(stored, sealSpec(spec({ target: hook(OTHER_SECRET) })))).toEqual([
      { path: 'target.http.secret', before: SECRET_CHANGED, after: SECRET_CHANGED },
    ]);
  });
});
