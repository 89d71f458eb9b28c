import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ErrorCode, KairosError } from '../../../domain/errors/index.js';
import type { Clock } from '../../clock/clock.js';
import { semiSpaceFlag } from '../../threads/youngGeneration.js';
import type { RebuildProgress } from '../rebuild.js';
import { setCpuClass, type CpuClass } from './cpuClass.js';
import { errorOfWire, type HostInit, type HostMessage, type HostRequest } from './protocol.js';
import type { FeedHandlers, ReadSidePort } from './readSidePort.js';

type Pending = {
  resolve: (value: never) => void;
  reject: (error: Error) => void;
  onProgress?: (progress: RebuildProgress) => void;
};

/** Restarts back off from 1 s to a minute while the process keeps failing (a locked or broken read.db). */
const RESTART_MS = 1_000;
const MAX_RESTART_MS = 60_000;
/** A query the read side has not answered by then fails as `unavailable`. */
const CALL_TIMEOUT_MS = 30_000;
/** Queries that read the whole log, which may rightly take longer on a large one (as a replay does). */
const WHOLE_LOG_QUERIES: ReadonlySet<string> = new Set(['verify', 'boardAt']);
const CLOSE_TIMEOUT_MS = 10_000;

const entry = (): { script: string; execArgv: string[] } => {
  const here = import.meta.url;
  // From TypeScript sources (tests), the child loads the .ts entry through tsx.
  return here.endsWith('.ts')
    ? { script: fileURLToPath(new URL('./readSideMain.ts', here)), execArgv: ['--import', 'tsx', semiSpaceFlag] }
    : { script: fileURLToPath(new URL('./readSideMain.js', here)), execArgv: [semiSpaceFlag] };
};

/**
 * The node's handle on its read-side process (readSideMain.ts): queries, replays and live feeds as
 * messages over the IPC channel. The process is forked at a lower CPU priority, so projections, heavy
 * queries and rebuilds never take the firing thread's time; if it dies it is started again (its
 * checkpoints make that exact), and what was waiting on it fails as `unavailable` meanwhile.
 */
export class ChildReadSide implements ReadSidePort {
  readonly #init: HostInit;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #pending = new Map<number, Pending>();
  readonly #feeds = new Map<number, FeedHandlers>();
  #child: ChildProcess | null = null;
  #ready: Promise<void> | null = null;
  #seq = 0;
  #closing = false;
  /** Starts in a row that ended before the process was ready. */
  #failedStarts = 0;
  #busy = false;

  constructor(options: { init: HostInit; logger: Logger; clock: Clock }) {
    this.#init = options.init;
    this.#log = options.logger;
    this.#clock = options.clock;
  }

  /** Starts the process and waits until it has opened the log and the read database. */
  start(): Promise<void> {
    const { script, execArgv } = entry();
    const child = fork(script, [], {
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.#child = child;
    // At the fork and again once ready, for the threads V8 and libuv started in between.
    if (child.pid !== undefined) setCpuClass(child.pid, this.#cpuClass, this.#log);
    this.#ready = new Promise<void>((resolve, reject) => {
      child.on('message', (message: HostMessage) => {
        if (message.t === 'ready') {
          this.#failedStarts = 0;
          if (child.pid !== undefined) setCpuClass(child.pid, this.#cpuClass, this.#log);
          if (this.#busy) this.#send({ t: 'node-busy', busy: true });
          resolve();
        } else if (message.t === 'failed') reject(errorOfWire(message.error));
        else this.#onMessage(message);
      });
      child.once('exit', (code, signal) => {
        reject(new KairosError(ErrorCode.unavailable, `the read side process exited (${signal ?? code})`));
        this.#onExit(child, code, signal);
      });
    });
    this.#send({ t: 'init', init: this.#init });
    return this.#ready;
  }

  /**
   * While the node is busy the process is `idle` (cpuClass.ts), taking only the CPU the node leaves, and
   * its projector commits larger batches; `background` (nice 19) otherwise.
   */
  nodeBusy(busy: boolean): void {
    if (busy === this.#busy) return;
    this.#busy = busy;
    const pid = this.#child?.pid;
    if (pid !== undefined) setCpuClass(pid, this.#cpuClass, this.#log, !busy);
    this.#send({ t: 'node-busy', busy });
  }

  get #cpuClass(): CpuClass {
    return this.#busy ? 'idle' : 'background';
  }

  #onMessage(message: Exclude<HostMessage, { t: 'ready' | 'failed' }>): void {
    switch (message.t) {
      case 'reply': {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.ok) pending?.resolve(message.value as never);
        else pending?.reject(errorOfWire(message.error));
        return;
      }
      case 'progress':
        this.#pending.get(message.id)?.onProgress?.(message.progress);
        return;
      case 'feed-data': {
        const feed = this.#feeds.get(message.feed);
        if (!feed) return;
        const bytes = message.chunk.length;
        feed.data(message.chunk, () => this.#send({ t: 'feed-ack', feed: message.feed, bytes }));
        return;
      }
      case 'feed-end':
        this.#feeds.get(message.feed)?.end(message.reason);
        this.#feeds.delete(message.feed);
    }
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child !== child) return;
    this.#child = null;
    const gone = new KairosError(ErrorCode.unavailable, 'the read side is restarting; try again shortly');
    for (const pending of this.#pending.values()) pending.reject(gone);
    this.#pending.clear();
    for (const feed of this.#feeds.values()) feed.end('the read side is restarting; reconnect with Last-Event-ID');
    this.#feeds.clear();
    if (this.#closing) return;
    const delay = Math.min(MAX_RESTART_MS, RESTART_MS * 2 ** this.#failedStarts++);
    this.#log.error({ code, signal, delayMs: delay }, 'the read side process exited; starting it again');
    this.#clock.setTimer(() => {
      if (!this.#closing)
        this.start().catch((err: unknown) => this.#log.error({ err }, 'the read side process did not start'));
    }, delay);
  }

  #send(request: HostRequest): boolean {
    const child = this.#child;
    if (!child?.connected) return false;
    child.send(request);
    return true;
  }

  async #call<T>(
    request: (id: number) => HostRequest,
    long?: { onProgress?: (p: RebuildProgress) => void },
  ): Promise<T> {
    const onProgress = long?.onProgress;
    // A call made while the process starts waits for it; one made after a failed start fails at once.
    await this.#ready?.catch(() => undefined);
    const id = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      // A replay reports progress and may take many minutes; a query that takes this long has hung.
      const deadline = long
        ? null
        : this.#clock.setTimer(() => {
            if (!this.#pending.delete(id)) return;
            reject(
              new KairosError(ErrorCode.unavailable, `the read side did not answer within ${CALL_TIMEOUT_MS / 1000} s`),
            );
          }, CALL_TIMEOUT_MS);
      const settle =
        <A extends unknown[]>(f: (...a: A) => void) =>
        (...a: A) => {
          deadline?.cancel();
          f(...a);
        };
      this.#pending.set(id, {
        resolve: settle(resolve as (v: never) => void),
        reject: settle(reject),
        ...(onProgress ? { onProgress } : {}),
      });
      if (!this.#send(request(id))) {
        this.#pending.delete(id);
        deadline?.cancel();
        reject(new KairosError(ErrorCode.unavailable, 'the read side is not running; try again shortly'));
      }
    });
  }

  query: ReadSidePort['query'] = (name, args, minPosition = 0) =>
    this.#call((id) => ({ t: 'query', id, name, args, minPosition }), WHOLE_LOG_QUERIES.has(name) ? {} : undefined);

  replay: ReadSidePort['replay'] = (args, onProgress) =>
    this.#call((id) => ({ t: 'replay', id, args }), onProgress ? { onProgress } : {});

  openFeed(
    after: number,
    filter: Parameters<ReadSidePort['openFeed']>[1],
    handlers: FeedHandlers,
    windowBytes: number,
  ) {
    const feed = ++this.#seq;
    this.#feeds.set(feed, handlers);
    if (!this.#send({ t: 'feed-open', feed, after, filter, windowBytes })) {
      this.#feeds.delete(feed);
      queueMicrotask(() => handlers.end('the read side is not running; try again shortly'));
    }
    return {
      close: () => {
        if (this.#feeds.delete(feed)) this.#send({ t: 'feed-close', feed });
      },
    };
  }

  /** Asks the process to catch up to `position`, commit and exit; kills it if it has not after 10 s. */
  async close(position = 0): Promise<void> {
    this.#closing = true;
    const child = this.#child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (!this.#send({ t: 'close', position })) child.kill('SIGKILL');
    const timer = this.#clock.setTimer(() => child.kill('SIGKILL'), CLOSE_TIMEOUT_MS);
    await exited;
    timer.cancel();
  }
}
