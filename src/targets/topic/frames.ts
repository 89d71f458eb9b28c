/**
 * Several protocol messages in one WebSocket frame, one JSON text per line. At thousands of fires a
 * second, a frame per message cost both ends a system call and a frame parse each; messages queued
 * in one turn of the event loop now leave together. `JSON.stringify` never writes a raw newline, so a
 * frame of one message reads the same either way: an old peer's frames are one-line frames.
 *
 * Each side says what it reads: a subscriber asks for packed frames in its upgrade request
 * (`frames=lines`), the hub says in `welcome` that it reads them; neither packs for a peer that did
 * not say so.
 */
export const PACKED_FRAMES = 'lines';

/** The messages of one frame, in order. */
export const messagesOf = (frame: string): string[] => frame.split('\n');

/** A frame grows to at most this before it leaves early: one turn's backlog must not become one huge frame. */
const MAX_FRAME_CHARS = 256 * 1024;

/**
 * Queues the messages of one turn and writes them as one frame (`setImmediate`, or at once past
 * `MAX_FRAME_CHARS`). A queued message can be withdrawn before it leaves: an ack followed by its
 * outcome in the same turn needs only the outcome.
 */
export class FramePacker {
  #queue: (string | null)[] = [];
  #chars = 0;
  #scheduled = false;

  constructor(private readonly write: (frame: string) => void) {}

  /** Queues a message; returns its place in the queue until it leaves (for `withdraw`). */
  push(message: string): number {
    this.#queue.push(message);
    this.#chars += message.length + 1;
    if (this.#chars >= MAX_FRAME_CHARS) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
    return this.#queue.length - 1;
  }

  /** Withdraws the message queued at `place` if it is still there (not yet written). */
  withdraw(place: number, message: string): void {
    if (this.#queue[place] === message) this.#queue[place] = null;
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#queue.length === 0) return;
    const frame = this.#queue.filter((m) => m !== null).join('\n');
    this.#queue = [];
    this.#chars = 0;
    if (frame !== '') this.write(frame);
  }
}
