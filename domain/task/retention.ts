import { toMillis } from '../time/instant.js';
import type { TaskEvent } from './events.js';
import type { TaskSpec } from './spec.js';

/**
 * Retention: how much execution history a task stream keeps, and where to truncate it. A fire (every
 * `TaskFired` attempt of a fire id and their outcomes) is kept while its first attempt is within
 * `maxAgeMs` of now and among the `maxFires` most recent fires; both limits apply when both are set.
 * Only execution events go: the truncation comes after a `TaskStateCaptured` that holds the state and
 * the whole definition and ownership history, and never after it.
 */
export type RetentionPolicy = {
  /** Keep fires (and any other event) no older than this; null: no age limit. */
  maxAgeMs: number | null;
  /** Keep at most this many of the most recent fires; null: no count limit. */
  maxFires: number | null;
};

/** The policy for one task: its own `retention` when its spec has one, else the node's; null keeps everything. */
export const retentionPolicyOf = (node: RetentionPolicy, spec: TaskSpec | null): RetentionPolicy | null => {
  const own = spec?.retention;
  const policy = own ? { maxAgeMs: own.maxAge ?? null, maxFires: own.maxFires ?? null } : node;
  return policy.maxAgeMs === null && policy.maxFires === null ? null : policy;
};

/** When an event happened, by its own data (the store's commit time is not part of a task event). */
const instantOf = (event: TaskEvent): number =>
  toMillis(event.type === 'TaskFired' ? event.data.firedAt : event.data.at);

/**
 * Finds where a task stream may be truncated. Feed it the readable stream from its first event,
 * forwards, while `add` returns true; then `cut(captureRevision)` says before which revision the
 * stream may be truncated once a capture is appended at `captureRevision` (the head + 1), or null
 * when that would remove nothing. A fire still open at the end of the scan (no final outcome: in
 * flight, or waiting for its retry) keeps its first attempt, so its history stays whole; a finished
 * fire may lose its first attempt and keep a later one or its outcome (fire history then leaves it
 * out). Keeping finished fires whole cannot be promised: fires that overlap one another (overlap
 * `allow`, slow answers) may leave no revision between two fires at all.
 * Revisions are numbers: a stream never reaches 2^53 events.
 */
export class RetentionScan {
  readonly #policy: RetentionPolicy;
  readonly #oldest: number;
  #first: number | null = null;
  /** The first revision inside the age window, once seen. */
  #ageCut: number | null = null;
  /** First attempts of the fires with no final outcome yet, by fire id. */
  readonly #open = new Map<string, number>();
  /** Revisions of the last `maxFires` first attempts: a ring, `#fired` counts every first attempt. */
  readonly #starts: number[] = [];
  #fired = 0;

  constructor(policy: RetentionPolicy, now: number) {
    this.#policy = policy;
    this.#oldest = policy.maxAgeMs === null ? -Infinity : now - policy.maxAgeMs;
  }

  /** One event, in stream order; false once the scan has seen enough (an age limit alone stops at its window). */
  add(revision: number, event: TaskEvent): boolean {
    this.#first ??= revision;
    if (this.#ageCut === null && this.#policy.maxAgeMs !== null && instantOf(event) >= this.#oldest)
      this.#ageCut = revision;
    switch (event.type) {
      case 'TaskFired':
        if (event.data.attempt === 1) {
          this.#open.set(event.data.fireId, revision);
          if (this.#policy.maxFires !== null) this.#starts[this.#fired % this.#policy.maxFires] = revision;
          this.#fired++;
        }
        break;
      case 'TaskSucceeded':
        this.#open.delete(event.data.fireId);
        break;
      case 'TaskFailed':
        if (event.data.willRetryAt === undefined) this.#open.delete(event.data.fireId);
        break;
      default:
        break;
    }
    return this.#policy.maxFires !== null || this.#ageCut === null;
  }

  cut(captureRevision: number): number | null {
    const first = this.#first;
    if (first === null) return null;
    const { maxAgeMs, maxFires } = this.#policy;
    // Each limit says before which revision events may go; an event goes when either says so.
    let cut = first;
    if (maxAgeMs !== null) cut = Math.max(cut, this.#ageCut ?? captureRevision);
    // The ring's next slot holds the oldest of the last `maxFires` first attempts.
    if (maxFires !== null && this.#fired > maxFires)
      cut = Math.max(cut, this.#starts[this.#fired % maxFires] as number);
    cut = Math.min(cut, captureRevision);
    for (const start of this.#open.values()) cut = Math.min(cut, start);
    return cut > first ? cut : null;
  }
}
