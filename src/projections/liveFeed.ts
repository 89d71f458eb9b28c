import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import type { ProjectedEvent } from '../../domain/projections/readModel.js';
import type { TaskBoardRow } from '../../domain/projections/taskBoard.js';
import { redactEvent } from '../../domain/projections/redaction.js';
import type { EventStore } from '../store/eventStore.js';
import { decodeLogEvent, READ_MODEL_STREAMS } from './projectedEvent.js';
import type { Commit, Projector } from './projector.js';
import { boardView } from './queries/boardQueries.js';
import type { ReadModelDb } from './readModelDb.js';

export type FeedFilter = {
  tasks?: string[];
  /** Tasks whose target is one of these topics (as defined now). */
  topics?: string[];
  /** Event types, and `board` for board changes; absent: everything. */
  types?: string[];
};

export type FeedSink = {
  /** One or more Server-Sent Events, as text. */
  send(feedId: number, chunk: string): void;
  end(feedId: number, reason: string): void;
};

type Feed = {
  id: number;
  /** Everything up to this log position has been sent (or filtered out). */
  sent: number;
  filter: FeedFilter;
  /** Following the live models' commits; otherwise reading the log (catching up, or after a stall). */
  live: boolean;
  catchingUp: boolean;
  closed: boolean;
  /** Bytes sent that have not yet left the node for the subscriber's socket (acknowledged). */
  unacked: number;
  /** How many unacknowledged bytes stop the sending (the node's bound for one subscriber). */
  window: number;
};

const PAGE = 500;
/** One message to the node at most this large: a window of 10,000 events goes in pieces. */
const CHUNK = 65_536;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const sse = (fields: { id?: number; event: string; data: unknown }): string =>
  `${fields.id === undefined ? '' : `id: ${fields.id}\n`}event: ${fields.event}\ndata: ${JSON.stringify(fields.data)}\n\n`;

/** A lifecycle event as the feed shows it (secrets redacted, as everywhere the API shows a spec). */
const eventMessage = (e: ProjectedEvent): string =>
  sse({
    id: e.position,
    event: e.event.type,
    data: {
      position: e.position,
      stream: e.stream,
      revision: e.revision,
      type: e.event.type,
      taskId: e.kind === 'task' ? e.taskId : null,
      data: e.kind === 'task' ? redactEvent(e.event).data : e.event.data,
      metadata: e.metadata,
      time: new Date(e.recordedAt).toISOString(),
    },
  });

/**
 * The live feed behind `GET /api/stream`: per subscriber, the lifecycle events after a log position
 * (catch-up from the log, then the live models' commits), and the board rows those events changed.
 *
 * Resuming is exact for events: each carries its position as its SSE id, and a subscriber that comes
 * back with `Last-Event-ID: p` gets every event after p, once — whatever p is (a position inside a
 * commit, of another stream, or ahead of these models: it waits for them). Board rows are states, sent without an
 * id *before* the events of the same window: a subscriber cut off mid-window may get a row again
 * after it resumes, never miss one (a row whose `position` is after p is always sent again).
 *
 * Memory is bounded on both sides: the node acknowledges what has left it for the subscriber's
 * socket, and a feed with more than its window unacknowledged is not sent to; once the subscriber
 * has read half of it the feed reads the log from where it stood, as a resume would. A subscriber
 * is thus paced by how fast it reads, never by how fast the log can be read. Catch-up yields between
 * pages, so a subscriber asking for the whole log never holds the projector or the queries up.
 */
export class LiveFeeds {
  readonly #feeds = new Map<number, Feed>();
  readonly #store: EventStore;
  readonly #db: ReadModelDb;
  readonly #projector: Projector;
  readonly #sink: FeedSink;
  readonly #log: Logger;
  readonly #subscription: Subscription;
  /** Task → topic as the board has it, read on demand and forgotten when the task's row changes. */
  readonly #topicCache = new Map<string, string | null>();

  constructor(options: { store: EventStore; db: ReadModelDb; projector: Projector; sink: FeedSink; logger: Logger }) {
    this.#store = options.store;
    this.#db = options.db;
    this.#projector = options.projector;
    this.#sink = options.sink;
    this.#log = options.logger;
    this.#subscription = this.#projector.commits$.subscribe((commit) => this.#onCommit(commit));
  }

  /** Opens a feed of what follows `after` (a negative `after`: what follows from now on). */
  open(id: number, after: number, filter: FeedFilter, window: number): void {
    const sent = after < 0 ? this.#projector.position : after;
    const feed: Feed = { id, sent, filter, live: false, catchingUp: false, closed: false, unacked: 0, window };
    this.#feeds.set(id, feed);
    this.#startCatchUp(feed);
  }

  /** `bytes` of this feed's messages have left the node. */
  ack(id: number, bytes: number): void {
    const feed = this.#feeds.get(id);
    if (!feed) return;
    feed.unacked = Math.max(0, feed.unacked - bytes);
    if (!feed.catchingUp) this.#resumeIfDrained(feed);
  }

  /** A catch-up that stopped for unacknowledged bytes goes on once half of them are taken. */
  #resumeIfDrained(feed: Feed): void {
    if (!feed.live && !feed.closed && feed.unacked <= feed.window / 2) this.#startCatchUp(feed);
  }

  #startCatchUp(feed: Feed): void {
    feed.catchingUp = true;
    this.#catchUp(feed)
      .catch((err: unknown) => {
        this.#log.error({ err, feed: feed.id }, 'live feed catch-up failed');
        this.#end(feed, `the log could not be read: ${(err as Error).message}`);
      })
      .finally(() => {
        feed.catchingUp = false;
        // Acks that came in while it was stopping found it still running.
        this.#resumeIfDrained(feed);
      });
  }

  close(id: number): void {
    const feed = this.#feeds.get(id);
    if (feed) feed.closed = true;
    this.#feeds.delete(id);
  }

  get size(): number {
    return this.#feeds.size;
  }

  #end(feed: Feed, reason: string): void {
    if (feed.closed) return;
    this.close(feed.id);
    this.#sink.end(feed.id, reason);
  }

  /** Reads the log from where the subscriber stands up to the live models, a page at a time, then goes live. */
  async #catchUp(feed: Feed): Promise<void> {
    for (;;) {
      const upTo = this.#projector.position;
      if (feed.closed || feed.unacked > feed.window) return;
      if (feed.sent >= upTo) {
        // Synchronous from the check on: no commit can slip in between. A feed ahead of the models
        // (it resumed from a later position) goes live too and waits for a commit to pass it.
        feed.live = true;
        return;
      }
      await nextTurn();
      const page = await this.#store.readAll({ after: BigInt(feed.sent), maxCount: PAGE });
      if (feed.closed) return;
      const events: ProjectedEvent[] = [];
      let to = feed.sent;
      for (const recorded of page) {
        const position = Number(recorded.position);
        if (position > upTo) break;
        to = position;
        if (!READ_MODEL_STREAMS.some((p) => recorded.stream.startsWith(p))) continue;
        const decoded = decodeLogEvent(recorded);
        if (decoded.ok) events.push(decoded.event);
      }
      // Nothing readable up to the models' position (retention deleted it meanwhile): nothing to send there.
      if (to === feed.sent) to = upTo;
      this.#sendWindow(feed, to, events);
    }
  }

  #onCommit(commit: Commit): void {
    for (const [key] of commit.changes.find((c) => c.model === 'board')?.tables.tasks ?? [])
      this.#topicCache.delete(String(key));
    for (const feed of this.#feeds.values()) {
      if (!feed.live || feed.sent < commit.from || feed.sent >= commit.to) continue;
      if (feed.unacked > feed.window) feed.live = false;
      else this.#sendWindow(feed, commit.to, commit.events);
    }
  }

  /**
   * Board rows changed in (sent, to], then the events of that window; the subscriber then stands at
   * `to` — or, past its bound, at the last event sent, and no longer live.
   */
  #sendWindow(feed: Feed, to: number, events: readonly ProjectedEvent[]): void {
    const { tasks, topics, types } = feed.filter;
    const wanted = (taskId: string | null, type: string): boolean =>
      (!types || types.includes(type)) &&
      (!tasks || (taskId !== null && tasks.includes(taskId))) &&
      (!topics || (taskId !== null && topics.includes(this.#topicOf(taskId) ?? '')));
    let chunk = '';
    const add = (message: string): void => {
      chunk += message;
      if (chunk.length >= CHUNK) flush();
    };
    const flush = (): void => {
      if (!chunk) return;
      feed.unacked += chunk.length;
      this.#sink.send(feed.id, chunk);
      chunk = '';
    };
    if (!types || types.includes('board')) {
      for (const row of this.#boardRowsChanged(feed.sent, to)) {
        if (wanted(row.taskId, 'board'))
          add(sse({ event: 'board', data: { position: row.position, task: boardView(row) } }));
      }
    }
    const from = feed.sent;
    for (const e of events) {
      if (e.position <= from || e.position > to || !wanted(e.kind === 'task' ? e.taskId : null, e.event.type)) continue;
      add(eventMessage(e));
      if (feed.unacked + chunk.length > feed.window) {
        // Over the bound mid-window: stop after this event; the rest is read from the log once the
        // subscriber has read enough (the window's board rows may then come again: they are states).
        flush();
        feed.sent = e.position;
        feed.live = false;
        return;
      }
    }
    feed.sent = to;
    flush();
  }

  #boardRowsChanged(after: number, upTo: number): TaskBoardRow[] {
    const schema = this.#db.schema('board', 'tasks');
    return this.#db.db
      .prepare(
        `SELECT * FROM "${this.#db.tableName('board', 'tasks')}" WHERE position > ? AND position <= ? ORDER BY position`,
      )
      .all(after, upTo)
      .map((r) => schema.fromRecord(r as Record<string, unknown>) as TaskBoardRow);
  }

  /** A task's topic, as the board has it now. */
  #topicOf(taskId: string): string | null {
    let topic = this.#topicCache.get(taskId);
    if (topic === undefined) {
      topic =
        (this.#db.db
          .prepare(`SELECT topic FROM "${this.#db.tableName('board', 'tasks')}" WHERE taskId = ?`)
          .pluck()
          .get(taskId) as string | null | undefined) ?? null;
      this.#topicCache.set(taskId, topic);
    }
    return topic;
  }

  closeAll(reason: string): void {
    this.#subscription.unsubscribe();
    for (const feed of [...this.#feeds.values()]) this.#end(feed, reason);
  }
}
