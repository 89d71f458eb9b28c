import type { FireDelivery, Target } from './dispatcher.js';

/** The one `Target` the node runtime talks to: sends each fire the way its task's `target` names. */
export class RoutingTarget implements Target {
  readonly #topics: Target;
  readonly #http: Target;

  constructor(targets: { topics: Target; http: Target }) {
    this.#topics = targets.topics;
    this.#http = targets.http;
  }

  deliver(fire: FireDelivery): void {
    if ('topic' in fire.target) this.#topics.deliver(fire);
    else this.#http.deliver(fire);
  }

  /** Both are told: each ignores attempts it does not hold, which saves remembering who holds what. */
  cancel(fireId: string, attempt: number): void {
    this.#topics.cancel(fireId, attempt);
    this.#http.cancel(fireId, attempt);
  }

  async close(): Promise<void> {
    await Promise.all([this.#topics.close(), this.#http.close()]);
  }
}
