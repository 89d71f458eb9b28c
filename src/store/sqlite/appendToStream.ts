import Database from 'better-sqlite3';
import { ErrorCode, KairosError } from '../../../domain/errors/index.js';
import { decideAppend, type PreparedAppend } from '../appendRules.js';
import type { AppendResult } from '../eventStore.js';
import { isBusy, type Outcome } from './groupCommit.js';
import type { EventRow, Statements } from './statements.js';

/**
 * What one write transaction did: an outcome per append, the head before it, the rows it inserted, and
 * per append whether it inserted them (false for failures, idempotent re-appends and empty appends).
 */
export type Written = { outcomes: Outcome[]; before: bigint; rows: EventRow[]; written: boolean[] };

/**
 * The write path of one group commit: one BEGIN IMMEDIATE transaction in which each append is decided
 * on its own (expected revision, idempotency; see appendRules.ts) and, if accepted, inserted.
 */
export const appendWriter = (
  db: Database.Database,
  st: Statements,
  now: () => number,
): ((appends: readonly PreparedAppend[]) => Written) => {
  /** `previous`: the stream's head position before this append (0n or undefined: no event yet, stored as 0). */
  const insertAll = (
    append: PreparedAppend,
    firstRevision: bigint,
    previous: bigint | undefined,
    time: number,
    rows: EventRow[],
  ): AppendResult => {
    let revision = firstRevision;
    let before = previous ?? 0n;
    let position = 0n;
    const stamp = BigInt(time);
    for (const e of append.events) {
      position = st.insertEvent(e.id, append.stream, revision, before, e.type, e.data, e.metadata, time);
      rows.push({
        position,
        id: e.id,
        stream: append.stream,
        revision,
        type: e.type,
        data: e.data,
        metadata: e.metadata,
        time: stamp,
      });
      before = position;
      revision++;
    }
    st.upsertStream(append.stream, revision - 1n, position);
    return { nextExpectedRevision: revision - 1n, position };
  };
  /** The truncation (or start) an empty append carries, once decided. */
  const truncate = (append: PreparedAppend, result: AppendResult): AppendResult => {
    const before = append.truncateBefore;
    if (before === undefined) return result;
    if (result.nextExpectedRevision >= 0n) {
      st.deleteBefore(append.stream, before);
      return result;
    }
    // No such stream: it starts empty, so its first event lands at `before`. Position 0n: no event yet.
    st.upsertStream(append.stream, before - 1n, 0n);
    return { nextExpectedRevision: before - 1n, position: 0n };
  };
  // Called inside the write transaction, so better-sqlite3 makes it a SAVEPOINT: undoing it undoes
  // that append alone.
  const insertIsolated = db.transaction(insertAll);

  const applyAll = (appends: readonly PreparedAppend[], isolate: boolean): Written => {
    // Under the write lock no other process can commit until we do, so the events we insert are
    // exactly those after this head.
    const before = st.head();
    const rows: EventRow[] = [];
    const time = now();
    const written = appends.map(() => false);
    const outcomes = appends.map((append, i): Outcome => {
      const head = st.streamHead(append.stream);
      const decision = decideAppend(
        append,
        head,
        append.events.map((e) => st.storedId(e.id)),
      );
      if (decision.kind === 'fail') return decision.error;
      if (decision.kind === 'done') return truncate(append, decision.result);
      written[i] = true;
      if (!isolate) return insertAll(append, decision.firstRevision, head?.position, time, rows);
      const mark = rows.length;
      try {
        return insertIsolated(append, decision.firstRevision, head?.position, time, rows);
      } catch (e) {
        written[i] = false;
        // Its savepoint is rolled back; the others stand, unless the whole transaction is lost anyway.
        if (isBusy(e) || !(e instanceof Database.SqliteError)) throw e;
        rows.length = mark;
        const message = `append to '${append.stream}' failed: ${e.message}`;
        return new KairosError(ErrorCode.internal, message, { stream: append.stream }, { cause: e });
      }
    });
    return { outcomes, before, rows, written };
  };
  const transaction = db.transaction(applyAll);

  const write = (appends: readonly PreparedAppend[], isolate = false): Written => {
    try {
      return transaction.immediate(appends, isolate);
    } catch (e) {
      // better-sqlite3 rolls back when the function throws; a failed COMMIT may leave the transaction open.
      if (db.inTransaction) db.exec('ROLLBACK');
      // An insert failed although the decision ruled out every conflict (a damaged file, a bug): write
      // the batch again with a savepoint per append, so only the culprit fails. Savepoints are not the
      // default because they cost about a third of the throughput (measured).
      if (!isolate && e instanceof Database.SqliteError && !isBusy(e)) return write(appends, true);
      throw e;
    }
  };
  return (appends) => write(appends);
};
