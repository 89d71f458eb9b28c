import { parse as parseUuid, v5 as uuidv5 } from 'uuid';

/** Namespace of every deterministic id Kairos derives (UUID v5). Never change it: ids are in the logs. */
export const KAIROS_NAMESPACE = '6f1c2a9e-4b7d-5e3f-9a81-2c4d6e8f0a1b';
// Parsed once: v5 on the hot path of every fire would otherwise re-parse the namespace text each time.
const NAMESPACE_BYTES = parseUuid(KAIROS_NAMESPACE);

/**
 * The fire id of a scheduled tick: the same `(taskId, scheduledAt)` always yields the same id, on every
 * node, so subscribers can dedupe on it and a node that retries its own append is idempotent. What keeps
 * two nodes from both firing a tick is the expected revision (design §3), not the id alone.
 */
export const fireIdOf = (taskId: string, scheduledAt: number): string =>
  uuidv5(`${taskId}@${scheduledAt}`, NAMESPACE_BYTES);

/** A manual trigger is its own fire, keyed by when it was asked for and how many came before it. */
export const manualFireIdOf = (taskId: string, requestedAt: number, sequence: number): string =>
  uuidv5(`${taskId}@manual@${requestedAt}#${sequence}`, NAMESPACE_BYTES);

/**
 * Event id of a `TaskFired`: the fire id itself for the first attempt (design §2), a derived id for
 * retries, so each attempt is stored once and a re-appended attempt is idempotent.
 */
export const firedEventIdOf = (fireId: string, attempt: number): string =>
  attempt === 1 ? fireId : uuidv5(`${fireId}#${attempt}`, NAMESPACE_BYTES);

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
