import { ErrorCode, KairosError } from '../../../domain/errors/index.js';

/** The ZooKeeper result codes this adapter tells apart (names as in the C client, without the `Z`). */
export const ZkCode = {
  OK: 0,
  CONNECTIONLOSS: -4,
  OPERATIONTIMEOUT: -7,
  INVALIDSTATE: -9,
  NONODE: -101,
  NOAUTH: -102,
  BADVERSION: -103,
  NOCHILDRENFOREPHEMERALS: -108,
  NODEEXISTS: -110,
  NOTEMPTY: -111,
  SESSIONEXPIRED: -112,
  AUTHFAILED: -115,
  CLOSING: -116,
  SESSIONMOVED: -118,
} as const;
export type ZkCodeName = keyof typeof ZkCode;

const nameOf = (rc: number): string =>
  (Object.keys(ZkCode) as ZkCodeName[]).find((name) => ZkCode[name] === rc) ?? `rc ${rc}`;

/** Codes after which the operation's outcome is unknown or the session is unusable: retry later. */
const unavailableCodes = new Set<number>([
  ZkCode.CONNECTIONLOSS,
  ZkCode.OPERATIONTIMEOUT,
  ZkCode.INVALIDSTATE,
  ZkCode.SESSIONEXPIRED,
  ZkCode.CLOSING,
  ZkCode.SESSIONMOVED,
]);

const kairosCodeOf = (rc: number): ErrorCode => {
  if (unavailableCodes.has(rc)) return ErrorCode.unavailable;
  if (rc === ZkCode.NONODE) return ErrorCode.notFound;
  if (rc === ZkCode.NODEEXISTS) return ErrorCode.alreadyExists;
  if (rc === ZkCode.BADVERSION) return ErrorCode.wrongExpectedVersion;
  return ErrorCode.internal;
};

/**
 * A failed ZooKeeper operation. `code` places it in Kairos' taxonomy (`unavailable` for connection loss,
 * `not_found`, `already_exists`, `wrong_expected_version`, `internal` for the rest, e.g. NOAUTH);
 * `zkCode` is ZooKeeper's own name for the failure.
 */
export class ZkError extends KairosError {
  readonly zkCode: string;
  readonly rc: number;

  constructor(rc: number, operation: string, path?: string) {
    const zkCode = nameOf(rc);
    super(
      kairosCodeOf(rc),
      `ZooKeeper ${operation}${path === undefined ? '' : ` ${path}`} failed: ${zkCode}`,
      path === undefined ? { zkCode } : { zkCode, path },
    );
    this.zkCode = zkCode;
    this.rc = rc;
  }
}

/** ZooKeeper could not be reached or the session ended: the caller may retry with a new client. */
export class ZkUnavailableError extends KairosError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCode.unavailable, message, details);
  }
}

export const isZkError = (e: unknown, zkCode?: ZkCodeName): e is ZkError =>
  e instanceof ZkError && (zkCode === undefined || e.zkCode === zkCode);
