import { unitHash } from '../task/fireId.js';
import { canonicalJson, type TaskSpec } from '../task/spec.js';
import { redactSpec } from './redaction.js';

/**
 * What changed between two task documents, field by field, for the audit. A webhook's secret is never
 * part of the result: read models and views show that a secret is set, or that it changed, never its
 * value (the log itself holds it, see docs/events.md "TaskCreated").
 */

/**
 * One changed leaf of a task document. `path` is a dot path (`schedule.cron`, `retry.backoff.initial`);
 * a key that is not a plain name is written in brackets as JSON text (`labels["app.kubernetes.io/name"]`),
 * so every path names one field. A field absent on one side shows `null` on that side: JSON text has no
 * `undefined`, and no spec field tells absent from null apart (only `payload` holds nulls).
 */
export type SpecChange = { path: string; before: unknown; after: unknown };

/** Both sides of the change of a webhook secret replaced by another one (a set one shows as `SECRET_SET`). */
export const SECRET_CHANGED = '(secret changed)';

const SECRET_PATH = 'target.http.secret';

/**
 * What a diff needs of a spec, with nothing secret in it: the redacted spec, and a hash of the secret
 * (null: none) that tells a replaced secret from the same one. The hash is FNV-1a (`unitHash`): its 32
 * bits say little about a secret of 16 characters or more, and miss a replacement once in four billion.
 */
export type SealedSpec = { spec: Readonly<Record<string, unknown>>; secretHash: number | null };

/** The spec as a diff needs it later, safe to store in a read model. */
export const sealSpec = (spec: TaskSpec): SealedSpec => {
  const secret = 'http' in spec.target ? spec.target.http.secret : undefined;
  return { spec: redactSpec(spec), secretHash: secret === undefined ? null : unitHash(secret) };
};

/** `specDiff` over sealed specs: what the audit runs, since it keeps only sealed specs. */
export const sealedSpecDiff = (before: SealedSpec | null, after: SealedSpec): SpecChange[] => {
  const changes: SpecChange[] = [];
  diffAt('', before?.spec, after.spec, changes);
  // Both redacted to the same marker, so only the hashes tell that one secret replaced another.
  if (before && before.secretHash !== null && after.secretHash !== null && before.secretHash !== after.secretHash)
    changes.push({ path: SECRET_PATH, before: SECRET_CHANGED, after: SECRET_CHANGED });
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
};

/**
 * The leaves that differ between two task documents, sorted by path (`before` null: every field of
 * `after`, as for a created task). Arrays are compared as whole values. When an object replaces a
 * non-object (or the reverse), or two objects differ in no leaf (`{}` against an absent field), the whole
 * values are shown at that path, so two documents that differ always give at least one change.
 */
export const specDiff = (before: TaskSpec | null, after: TaskSpec): SpecChange[] =>
  sealedSpecDiff(before && sealSpec(before), sealSpec(after));

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const PLAIN_KEY = /^[A-Za-z_$][\w$-]*$/;

const child = (path: string, key: string): string => {
  const part = PLAIN_KEY.test(key) ? key : `[${JSON.stringify(key)}]`;
  return path === '' ? part : part.startsWith('[') ? `${path}${part}` : `${path}.${part}`;
};

const diffAt = (path: string, a: unknown, b: unknown, out: SpecChange[]): void => {
  if (canonicalJson(a ?? null) === canonicalJson(b ?? null)) return;
  if ((a === undefined || isRecord(a)) && (b === undefined || isRecord(b))) {
    const found = out.length;
    for (const key of new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})]))
      diffAt(child(path, key), a?.[key], b?.[key], out);
    if (out.length > found) return;
  }
  out.push({ path, before: a ?? null, after: b ?? null });
};
