import { capturesState } from '../task/capture.js';
import { scheduleOfState } from '../task/decide.js';
import type { TaskEvent } from '../task/events.js';
import { evolve, initialTaskState, type TaskState } from '../task/state.js';
import { toIso, toMillis } from '../time/instant.js';

/**
 * Checks a log against the invariants Kairos promises (design §8), by folding every task stream the
 * way a node does and asking, at each step, whether the step was allowed:
 * - at most one scheduled `TaskFired` per (task, tick);
 * - epochs never go backwards in a stream, and no fire carries an epoch older than one recorded;
 * - every tick up to a handled tick was itself handled (fired, skipped or misfired): nothing lost;
 * - no fire is left without an outcome and without an owner to deliver it again;
 * - a `TaskStateCaptured` records the state its stream folds to (when the verifier saw that stream
 *   whole), and never an older epoch.
 * A stream may start after revision 0, or skip revisions: retention truncated it (and EventStoreDB's
 * `$all` may still show some of the truncated events). What came before is unknown until the capture
 * that follows every truncation, so from such a gap to that capture only what does not need the
 * state is checked: duplicate ticks, and epochs against those seen since.
 * Pure: feed it events in stream order per task (any interleaving of tasks), then read the report.
 */
export const ViolationKind = {
  duplicateFire: 'duplicate-fire',
  epochBackwards: 'epoch-backwards',
  staleEpochFire: 'stale-epoch-fire',
  lostTicks: 'lost-ticks',
  orphanFire: 'orphan-fire',
  undecodable: 'undecodable-event',
  captureMismatch: 'capture-mismatch',
} as const;
export type ViolationKind = (typeof ViolationKind)[keyof typeof ViolationKind];

export type Violation = { kind: ViolationKind; taskId: string; revision: number | null; message: string };

export type VerifyReport = {
  ok: boolean;
  tasks: number;
  events: number;
  fires: number;
  /** Attempts with no outcome yet (normal while a node runs; redelivered by the owner). */
  inFlight: number;
  violations: Violation[];
  counts: Record<ViolationKind, number>;
};

/** `whole`: every event of the stream so far was seen, so `state` is what a node folds. */
type Followed = {
  state: TaskState;
  ticks: Set<number>;
  revision: number;
  /** Every event since the stream's start or its last capture was seen: the folded state is exact. */
  whole: boolean;
  /** Part of the stream was truncated: `ticks` misses the fires before the cut. */
  truncated: boolean;
};

const isScheduledFire = (e: TaskEvent): e is Extract<TaskEvent, { type: 'TaskFired' }> =>
  e.type === 'TaskFired' && e.data.attempt === 1 && (e.data.trigger === 'schedule' || e.data.trigger === 'catch-up');

export class LogVerifier {
  readonly #tasks = new Map<string, Followed>();
  readonly #violations: Violation[] = [];
  #events = 0;
  #fires = 0;

  /** One event of a task stream, in stream order. */
  add(taskId: string, revision: number, event: TaskEvent): void {
    this.#events++;
    const task = this.#follow(taskId, revision);
    const flag = (kind: ViolationKind, message: string) => this.#violations.push({ kind, taskId, revision, message });
    const s = task.state;

    if (event.type === 'TaskAssigned' || event.type === 'TaskReassigned') {
      if (event.data.epoch < s.epochFloor) {
        flag(
          ViolationKind.epochBackwards,
          `${event.type} at epoch ${event.data.epoch} after epoch ${s.epochFloor} was recorded`,
        );
      }
    } else if (event.type === 'TaskFired') {
      this.#fires++;
      if (event.data.epoch < s.epochFloor) {
        flag(
          ViolationKind.staleEpochFire,
          `fire ${event.data.fireId} by ${event.data.node} at epoch ${event.data.epoch}, older than the recorded ${s.epochFloor}`,
        );
      }
      if (isScheduledFire(event)) {
        const tick = toMillis(event.data.scheduledAt);
        if (task.ticks.has(tick)) flag(ViolationKind.duplicateFire, `tick ${event.data.scheduledAt} fired twice`);
        // Fires cut away are not in `ticks`, but a known state's cursor covers them: every tick is
        // decided strictly after the cursor, so one at or before it was handled already.
        else if (task.truncated && s.spec !== null && tick <= s.cursor)
          flag(ViolationKind.duplicateFire, `tick ${event.data.scheduledAt} fired again, after it was handled`);
        task.ticks.add(tick);
        this.#checkGap(task, tick - 1, flag);
      }
    } else if (event.type === 'TaskSkipped' || event.type === 'TaskMisfired') {
      this.#checkGap(task, toMillis(event.data.after), flag);
    } else if (event.type === 'TaskStateCaptured') {
      const captured = event.data.state;
      if (task.whole && !capturesState(captured, s)) {
        flag(ViolationKind.captureMismatch, 'the captured state differs from the state its stream folds to');
      } else if (captured.epochFloor < s.epochFloor) {
        flag(
          ViolationKind.epochBackwards,
          `capture at epoch floor ${captured.epochFloor} after epoch ${s.epochFloor} was recorded`,
        );
      }
      task.whole = true;
    }
    task.state = evolve(s, event);
  }

  /** An event that could not be read as a task event: reported, and its stream goes on without it. */
  addUndecodable(taskId: string, revision: number, problem: string): void {
    this.#events++;
    // The state folded past it is no longer exact: a capture after it cannot be checked against it.
    this.#follow(taskId, revision).whole = false;
    this.#violations.push({ kind: ViolationKind.undecodable, taskId, revision, message: problem });
  }

  /** The task's record, moved to `revision`; a revision skipped means a truncation: the state is unknown. */
  #follow(taskId: string, revision: number): Followed {
    let task = this.#tasks.get(taskId);
    if (!task) {
      task = { state: initialTaskState(taskId), ticks: new Set(), revision: -1, whole: true, truncated: false };
      this.#tasks.set(taskId, task);
    }
    if (revision !== task.revision + 1) {
      task.state = initialTaskState(taskId);
      task.whole = false;
      task.truncated = true;
    }
    task.revision = revision;
    return task;
  }

  report(): VerifyReport {
    const violations = [...this.#violations];
    let inFlight = 0;
    for (const [taskId, { state, revision }] of this.#tasks) {
      inFlight += state.inFlight.length;
      if (state.inFlight.length > 0 && state.owner === null) {
        violations.push({
          kind: ViolationKind.orphanFire,
          taskId,
          revision,
          message: `${state.inFlight.length} fire(s) without outcome and no owner to deliver them again`,
        });
      }
    }
    const counts = Object.fromEntries(Object.values(ViolationKind).map((k) => [k, 0])) as Record<ViolationKind, number>;
    for (const v of violations) counts[v.kind]++;
    return {
      ok: violations.length === 0,
      tasks: this.#tasks.size,
      events: this.#events,
      fires: this.#fires,
      inFlight,
      violations,
      counts,
    };
  }

  /** Ticks between the cursor and `until` (inclusive) that nothing handled are lost. */
  #checkGap(task: Followed, until: number, flag: (kind: ViolationKind, message: string) => void): void {
    const { state } = task;
    if (until <= state.cursor) return;
    const schedule = scheduleOfState(state);
    const first = schedule?.next(state.cursor);
    if (!schedule || first === null || first === undefined || first > until) return;
    const { total } = schedule.latest(state.cursor, until, 1);
    flag(
      ViolationKind.lostTicks,
      `${total ?? 'many'} tick(s) in (${toIso(state.cursor)}, ${toIso(until)}] neither fired, skipped nor misfired, from ${toIso(first)}`,
    );
  }
}
