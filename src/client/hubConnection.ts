import WebSocket from 'ws';
import type { Clock, TimerHandle } from '../clock/clock.js';
import { FramePacker, PACKED_FRAMES, messagesOf } from '../targets/topic/frames.js';
import {
  CloseCode,
  PROTOCOL_VERSION,
  parseServerMessage,
  type FireMessage,
  type ServerMessage,
} from '../targets/topic/protocol.js';
import { backoffDelay, type Backoff } from './compiledOptions.js';
import type { Outcome } from './fireRunner.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'failed';
export type StateChange = { url: string; state: ConnectionState; error?: Error };
export type ConnectionHooks = {
  /** A fire for this consumer; its ack and outcome go back through `connection.send`. */
  fired(message: FireMessage, connection: HubConnection): void;
  /** The hub withdrew a delivery it sent on `connection`. */
  cancelled(deliveryId: string, connection: HubConnection): void;
  clock: Clock;
  backoff: Backoff;
  welcomed(): void;
  changed(change: StateChange): void;
  error(error: Error): void;
};

/**
 * One node's socket, reconnected with backoff until closed or refused for good. What a fire means is up
 * to the hooks: the SDK runs a handler, the cluster relay (`consumerRelay.ts`) forwards it.
 */
export class HubConnection {
  state: ConnectionState = 'connecting';
  #socket: WebSocket | undefined;
  #failures = 0;
  #retry: TimerHandle | undefined;
  #watchdog: TimerHandle | undefined;
  #cutoff: TimerHandle | undefined;
  #lastHeard = 0;
  #lastError: Error | undefined;
  #stopping = false;
  #stopped: (() => void) | undefined;
  /** Packs this turn's acks and outcomes into one frame, once the hub said it reads packed frames. */
  #packer: FramePacker | null = null;
  /** Where each delivery's ack waits in the packer: its outcome in the same turn withdraws it. */
  #queuedAcks = new Map<string, { place: number; text: string }>();

  constructor(
    readonly url: string,
    private readonly endpoint: string,
    private readonly hooks: ConnectionHooks,
  ) {}

  connect(): void {
    const socket = new WebSocket(this.endpoint);
    this.#socket = socket;
    this.#packer = null;
    this.#queuedAcks.clear();
    socket.on('message', (data) => {
      for (const message of messagesOf(data.toString())) this.#onMessage(message);
    });
    socket.on('ping', () => {
      this.#lastHeard = this.hooks.clock.now();
    });
    socket.on('error', (error) => {
      this.#lastError = error;
    });
    socket.on('close', (code, reason) => this.#onClose(code, reason.toString()));
  }

  send(message: { type: 'ack' | 'outcome'; deliveryId: string } & Partial<Outcome>): void {
    // A closed socket drops the outcome: the hub redelivers the fire after reconnect and the runner answers.
    const socket = this.#socket;
    if (socket?.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify({ v: PROTOCOL_VERSION, ...message });
    const packer = this.#packer;
    if (!packer) {
      socket.send(text);
      return;
    }
    // An outcome says the fire arrived: an ack still waiting beside it need not go.
    const ack = this.#queuedAcks.get(message.deliveryId);
    if (ack) {
      packer.withdraw(ack.place, ack.text);
      this.#queuedAcks.delete(message.deliveryId);
    }
    const place = packer.push(text);
    if (message.type === 'ack') this.#queuedAcks.set(message.deliveryId, { place, text });
  }

  /** Writes one packed frame; the acks it carries can no longer be withdrawn. */
  #writeFrame(socket: WebSocket, frame: string): void {
    this.#queuedAcks.clear();
    if (socket.readyState === WebSocket.OPEN) socket.send(frame);
  }

  /**
   * Closes the socket, waiting for the hub's close frame; with `graceMs`, a hub that has not answered by
   * then (frozen, cut off) is not waited for: the socket is cut, which the hub sees as a lost consumer.
   */
  close(graceMs?: number): Promise<void> {
    this.#stopping = true;
    this.#retry?.cancel();
    const socket = this.#socket;
    if (!socket) {
      this.#setState('closed');
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#stopped = resolve;
      if (socket.readyState !== WebSocket.OPEN) {
        socket.terminate();
        return;
      }
      this.#packer?.flush();
      socket.close(1000, 'consumer closing');
      if (graceMs !== undefined) this.#cutoff = this.hooks.clock.setTimer(() => socket.terminate(), graceMs);
    });
  }

  #onMessage(raw: string): void {
    this.#lastHeard = this.hooks.clock.now();
    const parsed = parseServerMessage(raw);
    if (!parsed.ok) {
      this.hooks.error(new Error(`unreadable message from the hub: ${parsed.error.message}`));
      return;
    }
    const message: ServerMessage = parsed.message;
    switch (message.type) {
      case 'welcome':
        this.#failures = 0;
        this.#lastError = undefined;
        this.#watch(message.heartbeatInterval);
        if (message.frames === PACKED_FRAMES && this.#socket) {
          const socket = this.#socket;
          this.#packer = new FramePacker((frame) => this.#writeFrame(socket, frame));
        }
        this.#setState('open');
        this.hooks.welcomed();
        return;
      case 'fire':
        this.hooks.fired(message, this);
        return;
      case 'cancel':
        this.hooks.cancelled(message.deliveryId, this);
        return;
      case 'error':
        this.#lastError = new Error(`${message.code}: ${message.message}`);
        this.hooks.error(this.#lastError);
        return;
    }
  }

  /** The hub pings every `interval`; two silent intervals mean the link is dead even without a close. */
  #watch(interval: number): void {
    const check = (): void => {
      if (this.hooks.clock.now() - this.#lastHeard > 2 * interval) this.#socket?.terminate();
      else this.#watchdog = this.hooks.clock.setTimer(check, interval);
    };
    this.#watchdog?.cancel();
    this.#watchdog = this.hooks.clock.setTimer(check, interval);
  }

  #onClose(code: number, reason: string): void {
    this.#socket = undefined;
    this.#watchdog?.cancel();
    this.#cutoff?.cancel();
    if (this.#stopping) {
      this.#setState('closed');
      this.#stopped?.();
      return;
    }
    const error = this.#lastError ?? new Error(`connection closed (${code}${reason ? ` ${reason}` : ''})`);
    if (code === CloseCode.badSubscription || code === CloseCode.replaced) {
      this.#setState(
        'failed',
        code === CloseCode.replaced ? new Error(`another connection uses this consumerId: ${reason}`) : error,
      );
      return;
    }
    this.#retry = this.hooks.clock.setTimer(() => this.connect(), backoffDelay(this.hooks.backoff, this.#failures++));
    this.#setState('reconnecting', error);
  }

  #setState(state: ConnectionState, error?: Error): void {
    this.state = state;
    this.hooks.changed({ url: this.url, state, ...(error ? { error } : {}) });
  }
}
