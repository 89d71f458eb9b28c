import { parse as parseUuid, v5 as uuidv5 } from 'uuid';
import { uuidText } from '../ids/uuidText.js';

/** Namespace of every deterministic id Kairos derives. Never change it: ids are in the logs. */
export const KAIROS_NAMESPACE = '6f1c2a9e-4b7d-5e3f-9a81-2c4d6e8f0a1b';
// Parsed once: hashing on the hot path of every fire would otherwise re-parse the namespace text each time.
const NAMESPACE_BYTES = parseUuid(KAIROS_NAMESPACE);

const TIME_SPAN = 2 ** 48;

/**
 * A derived id laid out as RFC 9562's version 8: the first 48 bits are `time` (epoch ms, big-endian, as
 * in a v7), the rest the SHA-1 of `name` in the Kairos namespace (the bits a v5 would carry). As
 * deterministic as a v5, and time-ordered: the log's unique index on event ids then grows at its right
 * edge instead of at a random page per append — random ids made each commit rewrite about two pages per
 * event in the SQLite log's WAL (docs/benchmarks.md, "Capacity").
 */
const derivedId = (time: Uint8Array | number, name: string): string => {
  const bytes = uuidv5(name, NAMESPACE_BYTES, new Uint8Array(16));
  if (typeof time === 'number') {
    const ms = ((Math.trunc(time) % TIME_SPAN) + TIME_SPAN) % TIME_SPAN;
    for (let i = 5, rest = ms; i >= 0; i--, rest = Math.floor(rest / 256)) bytes[i] = rest % 256;
  } else bytes.set(time.subarray(0, 6));
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x80;
  return uuidText(bytes);
};

/**
 * The fire id of a scheduled tick: the same `(taskId, scheduledAt)` always yields the same id, on every
 * node, so subscribers can dedupe on it and a node that retries its own append is idempotent. What keeps
 * two nodes from both firing a tick is the expected revision (design §3), not the id alone.
 */
export const fireIdOf = (taskId: string, scheduledAt: number): string =>
  derivedId(scheduledAt, `${taskId}@${scheduledAt}`);

/** A manual trigger is its own fire, keyed by when it was asked for and how many came before it. */
export const manualFireIdOf = (taskId: string, requestedAt: number, sequence: number): string =>
  derivedId(requestedAt, `${taskId}@manual@${requestedAt}#${sequence}`);

/**
 * Event id of a `TaskFired`: the fire id itself for the first attempt (design §2), a derived id for
 * retries (with the fire id's time bits), so each attempt is stored once and a re-appended attempt is
 * idempotent.
 */
export const firedEventIdOf = (fireId: string, attempt: number): string =>
  attempt === 1 ? fireId : derivedId(parseUuid(fireId), `${fireId}#${attempt}`);

/** A stable number in [0, 1) from a string: the randomness of jitter and backoff, reproducible on replay. */
export const unitHash = (key: string): number => {
  // FNV-1a, 32 bit: cheap, and good enough to spread jitter; not used for anything secret.
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 0x1_0000_0000;
};
