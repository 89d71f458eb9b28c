import ZooKeeper from 'zookeeper';
import { BehaviorSubject, Observable, distinctUntilChanged, filter, firstValueFrom } from 'rxjs';
import type { ConnectionState } from '../coordinator.js';
import { ZkCode, ZkError, ZkUnavailableError } from './zkErrors.js';

export type ZkClientOptions = {
  /** `host:port,host:port[/chroot]`; the chroot is created when missing. */
  connectionString: string;
  /** Requested session timeout; the servers clamp it to their [min, max]. @default 5000 */
  sessionTimeoutMs?: number;
  /**
   * Digest credentials `user:password`. Nodes this client creates (the chroot included) then carry an ACL
   * granting everything to that identity and nothing to anyone else, reading included.
   */
  auth?: string;
  /** How long `connectZk` waits for the first connection. @default max(2 × session timeout, 10 s) */
  connectTimeoutMs?: number;
};

/** How a znode outlives its creator: ephemeral nodes go with the session; sequential ones get a counter. */
export const CreateMode = {
  persistent: 'persistent',
  ephemeral: 'ephemeral',
  persistentSequential: 'persistent-sequential',
  ephemeralSequential: 'ephemeral-sequential',
} as const;
export type CreateMode = (typeof CreateMode)[keyof typeof CreateMode];

const createFlags: Record<CreateMode, number> = {
  persistent: 0,
  ephemeral: 1,
  'persistent-sequential': 2,
  'ephemeral-sequential': 3,
};

/** A znode's stat; `czxid` (creation transaction id) only grows, which makes it a fencing epoch. */
export type ZkStat = {
  czxid: number;
  mzxid: number;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: string;
  dataLength: number;
  numChildren: number;
  pzxid: number;
};

export interface ZkClient {
  /** The current state first, then every change; `lost` is final and completes the stream. */
  readonly state$: Observable<ConnectionState>;
  readonly state: ConnectionState | 'closed';
  /** ZooKeeper's session id (hex); unchanged across reconnections of one session. */
  readonly sessionId: string;
  /** Negotiated session timeout in ms. */
  readonly sessionTimeoutMs: number;
  /** Creates `path` and resolves with its actual name (sequential nodes get a suffix). */
  create(path: string, data?: string | Buffer, mode?: CreateMode): Promise<string>;
  /** Creates `path` and its missing ancestors as persistent nodes; existing nodes are left as they are. */
  mkdirp(path: string): Promise<void>;
  exists(path: string): Promise<ZkStat | null>;
  /** The node's data and stat, or null when it does not exist. */
  get(path: string): Promise<{ data: Buffer; stat: ZkStat } | null>;
  /** Replaces the data; `version` -1 matches any, otherwise a mismatch fails with BADVERSION. */
  set(path: string, data: string | Buffer, version?: number): Promise<ZkStat>;
  getChildren(path: string): Promise<string[]>;
  /**
   * The sorted children of `path` now and after every change, from one-shot watches re-armed after each
   * event; `[]` while the node does not exist. Errors with `unavailable` when the session is lost.
   */
  children$(path: string): Observable<string[]>;
  /**
   * The node's data and stat now and after every change (null while it does not exist), from one-shot
   * watches re-armed after each event. Errors with `unavailable` when the session is lost.
   */
  data$(path: string): Observable<{ data: Buffer; stat: ZkStat } | null>;
  /**
   * Resolves once `path` does not exist (at once if it does not now). Unlike a `data$` that sees the node
   * missing, it leaves no watch behind on the server for a node that may never come back.
   */
  gone(path: string): Promise<void>;
  /** Deletes `path`; `version` -1 matches any. */
  delete(path: string, version?: number): Promise<void>;
  /** Ends the session: its ephemeral nodes disappear at once. Idempotent. */
  close(): Promise<void>;
}

type Native = InstanceType<typeof ZooKeeper>;
type Acl = Array<{ perms: number; scheme: string; auth: string }>;

const SESSION_EVENT = -1;
const NOTWATCHING_EVENT = -2;
const CLOSED_EXPIRED = -112;
const CLOSED_AUTH_FAILED = -113;
/** The native client reads the ACL of the session's authenticated identities from scheme `auth`. */
const CREATOR_ALL_ACL: Acl = [{ perms: 31, scheme: 'auth', auth: '' }];

/** Splits `h1:p1,h2:p2/a/b` into the host list and the chroot (`''` when absent). */
export const parseConnectionString = (connectionString: string): { hosts: string; chroot: string } => {
  const slash = connectionString.indexOf('/');
  const hosts = slash === -1 ? connectionString : connectionString.slice(0, slash);
  const chroot = slash === -1 ? '' : connectionString.slice(slash).replace(/\/+$/, '');
  if (!/^[^,/\s]+:\d+(,[^,/\s]+:\d+)*$/.test(hosts))
    throw new ZkUnavailableError(`invalid ZooKeeper connection string '${connectionString}': expected host:port,...`);
  if (chroot.includes('//') || /\/\.{1,2}(\/|$)/.test(chroot))
    throw new ZkUnavailableError(`invalid ZooKeeper chroot '${chroot}'`);
  return { hosts, chroot };
};

/** Connects (creating the chroot first when missing) and resolves once the session is established. */
export const connectZk = async (options: ZkClientOptions): Promise<ZkClient> => {
  const { hosts, chroot } = parseConnectionString(options.connectionString);
  if (chroot !== '') {
    const bootstrap = await Session.open(hosts, options);
    try {
      await bootstrap.ensureChroot(chroot);
    } finally {
      await bootstrap.close();
    }
  }
  return Session.open(hosts + chroot, options);
};

class Session implements ZkClient {
  private readonly states = new BehaviorSubject<ConnectionState>('connected');
  readonly state$ = this.states.asObservable().pipe(distinctUntilChanged());
  private closed = false;
  private lostTimer: NodeJS.Timeout | undefined;
  private readonly acl: Acl | undefined;

  private constructor(
    private readonly native: Native,
    auth: string | undefined,
  ) {
    this.acl = auth === undefined ? undefined : CREATOR_ALL_ACL;
  }

  static async open(connect: string, options: ZkClientOptions): Promise<Session> {
    const sessionTimeoutMs = options.sessionTimeoutMs ?? 5_000;
    const connectTimeoutMs = options.connectTimeoutMs ?? Math.max(2 * sessionTimeoutMs, 10_000);
    const native = new ZooKeeper({
      connect,
      timeout: sessionTimeoutMs,
      // 0 silences the C client, which otherwise writes every refused connection to stderr.
      debug_level: 0,
      host_order_deterministic: false,
      // The native wrapper closes the session after this many idle polls; while every server is down
      // that would end a session that could still be resumed, so the limit is set out of reach.
      response_counter_limit: 2_000_000_000,
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        native.removeAllListeners();
        native.close();
        reject(new ZkUnavailableError(`no ZooKeeper server of ${connect} answered within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      native.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      native.init({});
    });
    const session = new Session(native, options.auth);
    session.listen();
    if (options.auth !== undefined) await session.addAuth(options.auth);
    return session;
  }

  get state(): ConnectionState | 'closed' {
    return this.closed ? 'closed' : this.states.value;
  }

  get sessionId(): string {
    return String(this.native.client_id);
  }

  get sessionTimeoutMs(): number {
    return this.native.timeout;
  }

  private listen(): void {
    this.native.on('connect', () => this.transition('connected'));
    this.native.on('connecting', () => this.transition('suspended'));
    this.native.on('close', (_self: unknown, code: number) => {
      if (code === CLOSED_EXPIRED || code === CLOSED_AUTH_FAILED) this.transition('lost');
    });
  }

  private transition(next: ConnectionState): void {
    if (this.closed || this.states.value === 'lost') return;
    clearTimeout(this.lostTimer);
    if (next === 'suspended')
      // The client learns of expiry only from a server; with none reachable, the session is given up
      // once the session timeout has passed, as the servers will have expired it by then (Curator does
      // the same). Nothing may act on this session's ephemeral nodes after that.
      this.lostTimer = setTimeout(() => this.transition('lost'), this.sessionTimeoutMs);
    this.states.next(next);
    if (next === 'lost') {
      this.closed = true;
      this.native.close();
      this.states.complete();
    }
  }

  private addAuth(auth: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const rc = this.native.add_auth('digest', auth, (code: number) =>
        code === ZkCode.OK ? resolve() : reject(new ZkError(code, 'add_auth')),
      );
      if (rc < 0) reject(new ZkError(rc, 'add_auth'));
    });
  }

  /** Runs one callback-style native call; a synchronous negative return is a failure too. */
  private call<T>(
    operation: string,
    path: string,
    invoke: (done: (rc: number, _error: unknown, ...result: unknown[]) => void) => number,
    pick: (...result: unknown[]) => T,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new ZkError(ZkCode.CLOSING, operation, path));
    return new Promise<T>((resolve, reject) => {
      const rc = invoke((code, _error, ...result) =>
        code === ZkCode.OK ? resolve(pick(...result)) : reject(new ZkError(code, operation, path)),
      );
      if (typeof rc === 'number' && rc < 0) reject(new ZkError(rc, operation, path));
    });
  }

  create(path: string, data: string | Buffer = '', mode: CreateMode = CreateMode.persistent): Promise<string> {
    return this.createWith(path, data, mode, this.acl);
  }

  private async createWith(path: string, data: string | Buffer, mode: CreateMode, acl: Acl | undefined) {
    const created = await this.call(
      'create',
      path,
      (done) => this.native.a_create(path, data, createFlags[mode], done),
      (p) => p as string,
    );
    // The native client always creates with an open ACL, so the restrictive one follows at once; the
    // parent's ACL already keeps other identities from creating or deleting children meanwhile.
    if (acl) await this.setAcl(created, acl);
    return created;
  }

  /** The chroot's ancestors stay open (other clusters may share them); the chroot itself is restricted. */
  async ensureChroot(chroot: string): Promise<void> {
    const parts = chroot.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const prefix = `/${parts.slice(0, i).join('/')}`;
      await this.createWith(prefix, '', CreateMode.persistent, i === parts.length ? this.acl : undefined).catch(
        ignoreExisting,
      );
    }
  }

  private setAcl(path: string, acl: Acl): Promise<void> {
    return this.call(
      'set_acl',
      path,
      (done) => this.native.a_set_acl(path, -1, acl, done),
      () => undefined,
    );
  }

  async mkdirp(path: string): Promise<void> {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const prefix = `/${parts.slice(0, i).join('/')}`;
      await this.create(prefix).catch(ignoreExisting);
    }
  }

  exists(path: string): Promise<ZkStat | null> {
    return this.call(
      'exists',
      path,
      (done) => this.native.a_exists(path, false, done),
      (stat) => stat as ZkStat,
    ).catch(nullIfMissing);
  }

  get(path: string): Promise<{ data: Buffer; stat: ZkStat } | null> {
    return this.call(
      'get',
      path,
      (done) => this.native.a_get(path, false, done),
      (stat, data) => ({ stat: stat as ZkStat, data: toBuffer(data) }),
    ).catch(nullIfMissing);
  }

  set(path: string, data: string | Buffer, version = -1): Promise<ZkStat> {
    return this.call(
      'set',
      path,
      (done) => this.native.a_set(path, data, version, done),
      (stat) => stat as ZkStat,
    );
  }

  getChildren(path: string): Promise<string[]> {
    return this.call(
      'get_children',
      path,
      (done) => this.native.a_get_children(path, false, done),
      (children) => [...((children as string[] | undefined) ?? [])].sort(),
    );
  }

  children$(path: string): Observable<string[]> {
    return this.watched<string[]>(
      path,
      'watch children',
      (watcher, done) =>
        this.native.aw_get_children(path, watcher, (rc: number, _e: unknown, children?: string[]) =>
          done(rc, [...(children ?? [])].sort()),
        ),
      [],
    ).pipe(distinctUntilChanged((a, b) => a.length === b.length && a.every((name, i) => name === b[i])));
  }

  data$(path: string): Observable<{ data: Buffer; stat: ZkStat } | null> {
    return this.watched<{ data: Buffer; stat: ZkStat } | null>(
      path,
      'watch data',
      (watcher, done) =>
        this.native.aw_get(path, watcher, (rc: number, _e: unknown, stat: unknown, data: unknown) =>
          done(rc, { stat: stat as ZkStat, data: toBuffer(data) }),
        ),
      null,
    );
  }

  gone(path: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.closed) return reject(new ZkUnavailableError(`ZooKeeper client is closed (${path})`));
        // A get on a missing node sets no watch; on an existing one it watches for its change or deletion.
        const rc = this.native.aw_get(
          path,
          (type: number) => {
            if (type !== SESSION_EVENT && type !== NOTWATCHING_EVENT) check();
          },
          (code: number) => {
            if (code === ZkCode.NONODE) resolve();
            else if (code !== ZkCode.OK) reject(new ZkError(code, 'watch deletion', path));
          },
        );
        if (rc < 0) reject(new ZkError(rc, 'watch deletion', path));
      };
      check();
    });
  }

  /**
   * What `read` returns now and after every change of `path`, from one-shot watches re-armed after each
   * event; `missing` while the node does not exist (an exists-watch then waits for its creation).
   */
  private watched<T>(
    path: string,
    operation: string,
    read: (watcher: (type: number) => void, done: (rc: number, value: T) => void) => number,
    missing: T,
  ): Observable<T> {
    return new Observable<T>((subscriber) => {
      let active = true;
      const rearmOn = (type: number): void => {
        // Session events reach every registered watcher without consuming it; only node events do.
        if (active && type !== SESSION_EVENT && type !== NOTWATCHING_EVENT) arm();
      };
      const retryWhenConnected = (): void => {
        firstValueFrom(this.states.pipe(filter((s) => s !== 'suspended'))).then(
          (s) => {
            if (!active) return;
            if (s === 'connected') arm();
            else subscriber.error(new ZkUnavailableError(`ZooKeeper session lost while watching ${path}`));
          },
          () => subscriber.error(new ZkUnavailableError(`ZooKeeper client closed while watching ${path}`)),
        );
      };
      const fail = (rc: number): void => {
        if (!active) return;
        if (rc === ZkCode.CONNECTIONLOSS || rc === ZkCode.OPERATIONTIMEOUT) retryWhenConnected();
        else subscriber.error(new ZkError(rc, operation, path));
      };
      const watchCreation = (): void => {
        const rc = this.native.aw_exists(path, rearmOn, (code: number) => {
          if (!active) return;
          if (code === ZkCode.OK) arm();
          else if (code !== ZkCode.NONODE) fail(code);
        });
        if (rc < 0) fail(rc);
      };
      const arm = (): void => {
        if (this.closed) return subscriber.error(new ZkUnavailableError(`ZooKeeper client is closed (${path})`));
        const rc = read(rearmOn, (code, value) => {
          if (!active) return;
          if (code === ZkCode.OK) subscriber.next(value);
          else if (code === ZkCode.NONODE) {
            subscriber.next(missing);
            watchCreation();
          } else fail(code);
        });
        if (rc < 0) fail(rc);
      };
      arm();
      return () => {
        active = false;
      };
    });
  }

  delete(path: string, version = -1): Promise<void> {
    return this.call(
      'delete',
      path,
      (done) => this.native.a_delete_(path, version, done),
      () => undefined,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.lostTimer);
    this.native.close();
    this.states.complete();
  }
}

const nullIfMissing = (err: unknown): null => {
  if (err instanceof ZkError && err.rc === ZkCode.NONODE) return null;
  throw err;
};

const ignoreExisting = (err: unknown): void => {
  if (!(err instanceof ZkError && err.rc === ZkCode.NODEEXISTS)) throw err;
};

const toBuffer = (data: unknown): Buffer =>
  Buffer.isBuffer(data) ? data : typeof data === 'string' ? Buffer.from(data) : Buffer.alloc(0);
