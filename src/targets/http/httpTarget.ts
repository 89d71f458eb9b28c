import { createHmac, timingSafeEqual } from 'node:crypto';
import { IllegalStateError } from '../../../domain/errors/index.js';
import { systemClock, type Clock, type TimerHandle } from '../../clock/clock.js';
import type { TargetSpec } from '../../../domain/task/spec.js';
import type { FireDelivery, FireOutcome, OutcomeDetail, OutcomeListener, Target } from '../dispatcher.js';

export type HttpTargetOptions = {
  /** @default systemClock */
  clock?: Clock;
  /** @default "kairos-webhook/1" */
  userAgent?: string;
  /** Where failures that must not escape go (a throwing outcome listener). @default console */
  logger?: { warn(details: object, message: string): void };
};

/** The JSON body of every webhook request. */
export type WebhookBody = Pick<
  FireDelivery,
  'taskId' | 'fireId' | 'attempt' | 'scheduledAt' | 'firedAt' | 'trigger' | 'payload'
>;

type HttpSpec = Extract<TargetSpec, { http: unknown }>['http'];
type AbortKind = 'timeout' | 'deadline' | 'cancelled';
type InFlight = { controller: AbortController; timer: TimerHandle | undefined };

const attemptKey = (fireId: string, attempt: number): string => `${fireId}#${attempt}`;
const ERROR_BODY_BYTES = 4096;
const ERROR_TEXT_CHARS = 200;

/** `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, the value of `X-Kairos-Signature`. */
export const signatureOf = (secret: string, timestamp: string | number, body: string | Buffer): string =>
  `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;

/**
 * For webhook receivers: true when `header` (`X-Kairos-Signature`) signs `timestamp` (`X-Kairos-Timestamp`)
 * and the raw `body` with `secret`. Compares in constant time. With `toleranceSeconds`, a timestamp
 * further than that from `now` (epoch ms, default the wall clock) fails too, which defeats replays.
 */
export const verifySignature = (
  secret: string,
  timestamp: string | number,
  body: string | Buffer,
  header: string | undefined,
  options: { toleranceSeconds?: number; now?: number } = {},
): boolean => {
  if (typeof header !== 'string' || !/^sha256=[0-9a-f]{64}$/i.test(header)) return false;
  if (options.toleranceSeconds !== undefined) {
    const ageSeconds = Math.abs((options.now ?? Date.now()) / 1000 - Number(timestamp));
    if (!(ageSeconds <= options.toleranceSeconds)) return false;
  }
  return timingSafeEqual(Buffer.from(signatureOf(secret, timestamp, body)), Buffer.from(header.toLowerCase()));
};

/**
 * Delivers http fires as one signed JSON request per attempt. Retries are not done here: the task's
 * retry policy fires a new attempt, which keeps every try in the log.
 */
export class HttpTarget implements Target {
  readonly #listener: OutcomeListener;
  readonly #clock: Clock;
  readonly #userAgent: string;
  readonly #logger: NonNullable<HttpTargetOptions['logger']>;
  readonly #inFlight = new Map<string, InFlight>();
  #closed = false;

  constructor(listener: OutcomeListener, options: HttpTargetOptions = {}) {
    this.#listener = listener;
    this.#clock = options.clock ?? systemClock;
    this.#userAgent = options.userAgent ?? 'kairos-webhook/1';
    this.#logger = options.logger ?? console;
  }

  deliver(fire: FireDelivery): void {
    if (!('http' in fire.target)) throw new IllegalStateError(`fire ${fire.fireId} is not an http fire`);
    const key = attemptKey(fire.fireId, fire.attempt);
    const remaining = fire.deadline - this.#clock.now();
    if (this.#closed || this.#inFlight.has(key) || remaining <= 0) return;
    const { timeout } = fire.target.http;
    // When the deadline comes first, the runtime records the timeout itself; only our own timeout is reported.
    const [limit, kind]: [number, AbortKind] = timeout < remaining ? [timeout, 'timeout'] : [remaining, 'deadline'];
    const entry: InFlight = { controller: new AbortController(), timer: undefined };
    entry.timer = this.#clock.setTimer(() => entry.controller.abort(kind), limit);
    this.#inFlight.set(key, entry);
    void this.#request(fire, fire.target.http, key, entry, limit);
  }

  cancel(fireId: string, attempt: number): void {
    const key = attemptKey(fireId, attempt);
    const entry = this.#inFlight.get(key);
    if (!entry) return;
    this.#inFlight.delete(key);
    entry.timer?.cancel();
    entry.controller.abort('cancelled' satisfies AbortKind);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const [key, entry] of [...this.#inFlight]) {
      this.#inFlight.delete(key);
      entry.timer?.cancel();
      entry.controller.abort('cancelled' satisfies AbortKind);
    }
  }

  async #request(fire: FireDelivery, http: HttpSpec, key: string, entry: InFlight, limit: number): Promise<void> {
    const { url, method, headers: custom, secret } = http;
    const { taskId, fireId, attempt, scheduledAt, firedAt, trigger, payload } = fire;
    const body = JSON.stringify({
      taskId,
      fireId,
      attempt,
      scheduledAt,
      firedAt,
      trigger,
      payload,
    } satisfies WebhookBody);
    const timestamp = String(Math.floor(this.#clock.now() / 1000));
    // Ours are set after the task's own headers so a task cannot forge the idempotency key or signature.
    const headers = new Headers(custom);
    headers.set('content-type', 'application/json');
    headers.set('user-agent', this.#userAgent);
    headers.set('idempotency-key', fireId);
    headers.set('x-kairos-task-id', taskId);
    headers.set('x-kairos-fire-id', fireId);
    headers.set('x-kairos-attempt', String(attempt));
    headers.set('x-kairos-timestamp', timestamp);
    if (secret) headers.set('x-kairos-signature', signatureOf(secret, timestamp, body));

    let detail: OutcomeDetail;
    try {
      // A redirect is reported, not followed: fetch would turn the POST into a GET and drop the body.
      const response = await fetch(url, { method, headers, body, redirect: 'manual', signal: entry.controller.signal });
      if (response.ok) {
        await response.body?.cancel().catch(() => {});
        detail = { status: 'succeeded', httpStatus: response.status };
      } else {
        const text = await readPrefix(response);
        detail = { status: 'failed', httpStatus: response.status, message: `HTTP ${response.status}: ${text}`.trim() };
      }
    } catch (error) {
      const signal = entry.controller.signal;
      if (signal.aborted && signal.reason !== 'timeout') return;
      detail = {
        status: 'failed',
        message: signal.aborted ? `timed out after ${limit}ms` : `request failed: ${reasonOf(error)}`,
      };
    } finally {
      entry.timer?.cancel();
    }
    // Cancelled (or closed) while the response was on its way: no outcome may follow.
    if (this.#inFlight.get(key) !== entry) return;
    this.#inFlight.delete(key);
    const outcome: FireOutcome = {
      taskId,
      fireId,
      attempt,
      status: detail.status,
      at: this.#clock.now(),
      details: [detail],
    };
    if (detail.message !== undefined) outcome.message = detail.message;
    try {
      this.#listener(outcome);
    } catch (error) {
      this.#logger.warn({ err: error, fireId }, 'http target: outcome listener threw');
    }
  }
}

/** The start of an error response as one line: enough for history without reading a huge body. */
const readPrefix = async (response: Response): Promise<string> => {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < ERROR_BODY_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel().catch(() => {});
  return Buffer.concat(chunks)
    .toString('utf8', 0, ERROR_BODY_BYTES)
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, ERROR_TEXT_CHARS);
};

/** fetch hides the socket error in `cause` (an AggregateError with an empty message for a refused localhost). */
const reasonOf = (error: unknown): string => {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as NodeJS.ErrnoException).code;
  return cause.message || code || cause.name;
};
