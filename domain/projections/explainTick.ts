import ms from 'ms';
import { occurredAtOf } from './occurredAt.js';
import type { ClusterEvent } from '../cluster/events.js';
import { jitterOf } from '../task/decide.js';
import { TaskEvent, type TaskEventData, type TaskEventOf } from '../task/events.js';
import type { Schedule } from '../task/schedule.js';
import type { TaskSpec } from '../task/spec.js';
import { evolve, initialTaskState, type InFlightFire, type TaskState } from '../task/state.js';
import { toIso, toMillis } from '../time/instant.js';
import type { ExplainQuestion, LoggedEvent, Verdict } from './explain.js';
import { emptyFireHistory, foldFireHistory, type FireRecord } from './fireHistory.js';

/**
 * The record of a tick, as `explainTick` (explain.ts) reads it: the task's history — every event with
 * the state it leaves, including the definition and ownership changes a retention capture remembers
 * from before the stream's first kept revision — and the facts of the events that handled the tick
 * (its fire, or the skip or misfire range holding it).
 */

/** One event of the task's history and the state it leaves. */
export type Step = {
  index: number;
  event: TaskEvent;
  /** The instant the event names: `firedAt` of a fire, `at` otherwise. */
  time: number;
  /** Who caused it: the metadata's actor, or the capture history's for a truncated change. */
  actor: string | null;
  /** The recorded event that says so: the event itself, or the capture whose history holds it. */
  cite: LoggedEvent<TaskEvent>;
  before: TaskState;
  after: TaskState;
  /** Whether `after` folds every event so far: false before the first capture of a truncated stream. */
  exact: boolean;
  /** Index of the step whose definition placed the tick grid in force after this one (-1: none known). */
  grid: number;
  /** Index of the last TaskCreated/TaskUpdated so far (-1: none known). */
  definition: number;
};

export type History = {
  steps: Step[];
  /** Execution records at or before this instant may be gone (retention); -Infinity for a whole stream. */
  knownFrom: number;
  firstRevision: number;
  /** The first capture kept: its history covers the truncated revisions. */
  capture: LoggedEvent<TaskEventOf<'TaskStateCaptured'>> | undefined;
};

const isCapture = (e: LoggedEvent<TaskEvent>): e is LoggedEvent<TaskEventOf<'TaskStateCaptured'>> =>
  e.event.type === 'TaskStateCaptured';

/** The definition and ownership changes a capture remembers from before `revision`, as the events they were. */
const changesBefore = (capture: LoggedEvent<TaskEventOf<'TaskStateCaptured'>>, revision: number) => {
  const { taskId, history } = capture.event.data;
  return [...history.definitions, ...history.ownership]
    .filter((change) => change.revision < revision)
    .sort((a, b) => a.revision - b.revision)
    .flatMap((change) => {
      // The schema drops the history's bookkeeping fields (revision, actor) and keeps the event's own.
      const parsed = TaskEvent.safeParse({ type: change.type, data: { ...change, v: 1, taskId } });
      return parsed.success ? [{ event: parsed.data, actor: change.actor }] : [];
    });
};

// evolve changes only `spec` when an update keeps the tick grid; a new grid restarts the schedule.
const restartsGrid = (before: TaskState, after: TaskState): boolean =>
  after.restartedAt !== before.restartedAt ||
  after.anchor !== before.anchor ||
  after.runs !== before.runs ||
  after.cursor !== before.cursor;

/** Folds the kept stream, after what its first capture remembers of the truncated part. */
export const historyOf = (taskId: string, kept: ReadonlyArray<LoggedEvent<TaskEvent>>): History => {
  const first = kept[0];
  const truncated = first !== undefined && first.revision > 0;
  const capture = kept.find(isCapture);
  const steps: Step[] = [];
  let state = initialTaskState(taskId);
  let exact = !truncated;
  let grid = -1;
  let definition = -1;
  const push = (event: TaskEvent, actor: string | null, cite: LoggedEvent<TaskEvent>): void => {
    if (event.type === 'TaskStateCaptured') exact = true;
    const after = evolve(state, event);
    const index = steps.length;
    if (event.type === 'TaskCreated' || event.type === 'TaskUpdated') {
      definition = index;
      if (event.type === 'TaskCreated' || restartsGrid(state, after)) grid = index;
    }
    steps.push({ index, event, time: occurredAtOf(event), actor, cite, before: state, after, exact, grid, definition });
    state = after;
  };
  if (truncated && capture) for (const c of changesBefore(capture, first.revision)) push(c.event, c.actor, capture);
  for (const logged of kept) push(logged.event, logged.metadata?.actor ?? null, logged);
  return {
    steps,
    knownFrom: truncated ? occurredAtOf(first.event) : -Infinity,
    firstRevision: first?.revision ?? 0,
    capture,
  };
};

/** The last step at or before `t`, events taken in stream order (-1: none). */
export const indexAt = (steps: Step[], t: number): number => {
  let i = 0;
  while ((steps[i]?.time ?? Infinity) <= t) i++;
  return i - 1;
};

/** The last step before index `end` that matches (-1: none). */
export const lastIndexOf = (steps: Step[], end: number, match: (step: Step) => boolean): number => {
  for (let i = Math.min(end, steps.length) - 1; i >= 0; i--) if (match(steps[i] as Step)) return i;
  return -1;
};

/** The first attempt of a scheduled tick (trigger `schedule` or `catch-up`). */
export const isScheduledFire = ({ event }: Step): boolean =>
  event.type === 'TaskFired' && event.data.attempt === 1 && event.data.trigger !== 'manual';

/** The first attempt of a manual trigger. */
export const isManualFire = ({ event }: Step): boolean =>
  event.type === 'TaskFired' && event.data.attempt === 1 && event.data.trigger === 'manual';

/** The TaskFired of this attempt of this fire. */
export const firesAttempt = ({ event }: Step, fire: { fireId: string; attempt: number }): boolean =>
  event.type === 'TaskFired' && event.data.fireId === fire.fireId && event.data.attempt === fire.attempt;

/** An owner recording itself (TaskAssigned, TaskReassigned). */
export const isClaim = ({ event }: Step): boolean => event.type === 'TaskAssigned' || event.type === 'TaskReassigned';

/** A claim or a release. */
export const isOwnership = (step: Step): boolean => isClaim(step) || step.event.type === 'TaskReleased';

/** A definition change that moved the cursor over `tick` without handling it (resume, restore, new grid). */
export const passesOver = ({ event, before, after }: Step, tick: number): boolean =>
  (event.type === 'TaskResumed' || event.type === 'TaskRestored' || event.type === 'TaskUpdated') &&
  before.cursor < tick &&
  tick <= after.cursor;

/** The step that handled `tick` (invariant 3, docs/events.md): its scheduled fire, or the skip or misfire range holding it. */
export const handlingOf = (steps: Step[], tick: number): Step | undefined =>
  steps.find(
    (step) =>
      (isScheduledFire(step) && toMillis((step.event.data as { scheduledAt: string }).scheduledAt) === tick) ||
      ((step.event.type === 'TaskSkipped' || step.event.type === 'TaskMisfired') &&
        toMillis(step.event.data.after) < tick &&
        tick <= toMillis(step.event.data.until)),
  );

/** The ownership claim appended with the decision at `step`: a claim precedes what it enables, at the same instant. */
export const claimOf = (steps: Step[], step: Step): Step | undefined => {
  for (let i = step.index - 1; i >= 0 && steps[i]?.time === step.time; i--) {
    if (isClaim(steps[i] as Step)) return steps[i];
  }
  return undefined;
};

/** A fire's attempts and outcomes from its first attempt on, and the fire as the fire history sums it up. */
export const fireOf = (steps: Step[], first: Step): { record: FireRecord; steps: Step[] } => {
  const fireId = (first.event.data as { fireId: string }).fireId;
  const own = steps.filter(
    ({ index, event }) =>
      index >= first.index &&
      (event.type === 'TaskFired' || event.type === 'TaskSucceeded' || event.type === 'TaskFailed') &&
      event.data.fireId === fireId,
  );
  const history = own.reduce((h, s) => foldFireHistory(h, s.event), emptyFireHistory());
  return { record: history.fires.get(fireId) as FireRecord, steps: own };
};

/** The last cluster event recorded at or before `until` that matches. */
export const lastClusterEvent = (
  cluster: ReadonlyArray<LoggedEvent<ClusterEvent>>,
  until: number,
  match: (event: ClusterEvent) => boolean,
): LoggedEvent<ClusterEvent> | undefined =>
  cluster.findLast((logged) => occurredAtOf(logged.event) <= until && match(logged.event));

/** What an answer is built from once the task exists at the time asked about. */
export type Context = {
  question: ExplainQuestion;
  history: History;
  /** The state folded up to `at`: its schedule is the one asked about. */
  state: TaskState;
  spec: TaskSpec;
  schedule: Schedule;
  /** When the schedule took effect: its ticks at or before this were never due. */
  since: number;
  /** The create/update steps that put the schedule in force. */
  definedBy: Step[];
};

/** The tick an answer is about, and which rule chose it. */
export type Pick = { tick: number; chosen: 'latest-at-or-before' | 'next-after' };

/** What supports a verdict. */
export type Facts = {
  summary: string;
  details: Record<string, unknown>;
  cited: Array<Step | LoggedEvent<ClusterEvent> | undefined>;
};
/** A verdict and what supports it. */
export type Finding = Facts & { verdict: Verdict };

/** ISO text of an instant; null for none (or an unbounded one). */
export const iso = (millis: number | null | undefined): string | null =>
  millis == null || !Number.isFinite(millis) ? null : toIso(millis);

/** Milliseconds up to 10 s (lateness reads best exact), words beyond. */
export const span = (millis: number): string =>
  Math.abs(millis) < 10_000 ? `${millis} ms` : ms(millis, { long: true });

const outcomeOf = (fire: FireRecord): string => {
  switch (fire.status) {
    case 'succeeded':
      return `succeeded after ${span(fire.durationMs ?? 0)}${fire.attempts > 1 ? ` on attempt ${fire.attempts}` : ''}`;
    case 'failed':
      return `failed after ${fire.attempts} attempt(s): ${fire.message}`;
    case 'timed-out':
      return `timed out on attempt ${fire.attempts}`;
    case 'cancelled':
      return `was cancelled: ${fire.message}`;
    case 'retrying':
      return `attempt ${fire.attempts} failed and a retry is pending`;
    case 'in-flight':
      return `attempt ${fire.attempts} has no outcome yet`;
  }
};

/** A fire as an answer shows it: where, how late (jitter included, `jitterMs` of it), how it ended. */
const fireFacts = (ctx: Context, fire: FireRecord) => ({
  fireId: fire.fireId,
  trigger: fire.trigger,
  node: fire.node,
  epoch: fire.epoch,
  firedAt: fire.firedAt,
  latenessMs: fire.latenessMs,
  jitterMs: jitterOf(ctx.state, toMillis(fire.scheduledAt)),
  attempts: fire.attempts,
  outcome: fire.status,
  outcomeAt: fire.outcomeAt,
  durationMs: fire.durationMs,
  message: fire.message,
});

/** Manual fires asked for between the ticks around `at`: a run there that the schedule did not start. */
const manualFiresNear = ({ history, schedule, since, question }: Context): Step[] => {
  const from = schedule.latest(since, question.at, 1).ticks[0] ?? since;
  const to = schedule.next(question.at) ?? Infinity;
  return history.steps.filter((s) => isManualFire(s) && s.time >= from && s.time < to);
};

/** A scheduled fire of the tick: how late, where, and how it ended. */
export const fired = (ctx: Context, first: Step): Facts => {
  const { record, steps } = fireOf(ctx.history.steps, first);
  const claim = claimOf(ctx.history.steps, first);
  const manual = manualFiresNear(ctx);
  const alsoManual = manual.map((m) => `; also fired manually at ${iso(m.time)} by ${m.actor}`).join('');
  return {
    summary: `fired ${span(record.latenessMs)} late on ${record.node} (${record.trigger}), ${outcomeOf(record)}${alsoManual}`,
    details: {
      ...fireFacts(ctx, record),
      claim: claim?.event.data ?? null,
      manualFires: manual.map((m) => ({ ...m.event.data, actor: m.actor })),
    },
    cited: [claim, ...steps, ...manual],
  };
};

/** A one-shot asked about after it fired: nothing is left to fire. */
export const oneShotFired = (ctx: Context, pick: Pick, first: Step): Facts => {
  const { record, steps } = fireOf(ctx.history.steps, first);
  return {
    summary: `ended: the one-shot at ${iso(pick.tick)} already fired at ${record.firedAt} on ${record.node} and ${outcomeOf(record)}; it has no later tick`,
    details: { endedBy: 'one-shot-fired', ...fireFacts(ctx, record) },
    cited: steps,
  };
};

/** Running fires as an answer shows them, each with the attempt that started it. */
export const runningFires = (steps: Step[], fires: InFlightFire[], before: number) =>
  fires.map((fire) => ({
    fire: { ...fire, scheduledAt: iso(fire.scheduledAt), firedAt: iso(fire.firedAt) },
    step: steps[lastIndexOf(steps, before, (s) => firesAttempt(s, fire))],
  }));

const SKIP_REASONS = {
  skip: 'a fire was still running',
  'buffer-one': 'a newer tick displaced it while a fire was running',
  'buffer-all': 'more ticks piled up during a run than misfire.maxCatchUp keeps',
} as const;

/** A skip range holding the tick: the overlap policy, and the fire that was running. */
export const skipped = (ctx: Context, skip: Step): Facts => {
  const d = skip.event.data as TaskEventData<'TaskSkipped'>;
  const running = runningFires(ctx.history.steps, skip.before.inFlight, skip.index);
  const first = running[0]?.fire;
  const which = first ? ` (the fire of ${first.scheduledAt}, ${first.trigger}, attempt ${first.attempt})` : '';
  return {
    summary: `skipped at ${d.at} by the overlap policy "${d.policy}": ${SKIP_REASONS[d.policy]}${which}`,
    details: {
      policy: d.policy,
      range: { after: d.after, until: d.until, count: d.count },
      skippedAt: d.at,
      running: running.map((r) => r.fire),
    },
    cited: [skip, ...running.map((r) => r.step)],
  };
};

/** Why the misfire policy dropped a tick handled `lateMs` after it was due. */
const dropReasonOf = (policy: string, lateMs: number, window: number | undefined): string =>
  window !== undefined && lateMs > window
    ? `older than the catch-up window of ${span(window)}`
    : policy === 'fire-all'
      ? 'beyond the maxCatchUp most recent ticks that fire-all fires'
      : 'the skip policy does not fire late ticks';

/** A misfire range holding the tick: how late it was handled, and what the policy did with it. */
export const misfired = (ctx: Context, pick: Pick, miss: Step): Facts => {
  const d = miss.event.data as TaskEventData<'TaskMisfired'>;
  const { steps } = ctx.history;
  const misfire = (miss.before.spec ?? ctx.spec).misfire;
  const lateMs = miss.time - (pick.tick + jitterOf(miss.before, pick.tick));
  const claim = claimOf(steps, miss);
  const claimed = claim?.event.data as { node: string; reason: string } | undefined;
  // fire-once coalesces the older ticks into the catch-up fire of the newest, appended with them.
  const catchUp =
    d.action === 'coalesced'
      ? steps.find((s) => s.index > miss.index && s.time === miss.time && isScheduledFire(s))
      : undefined;
  const into = (catchUp?.event.data as { scheduledAt?: string } | undefined)?.scheduledAt ?? null;
  // No catch-up fire: the overlap policy skipped the newest tick too (a fire was still running).
  const skip =
    d.action === 'coalesced' && !catchUp
      ? steps.find((s) => s.index > miss.index && s.time === miss.time && s.event.type === 'TaskSkipped')
      : undefined;
  const skipPolicy = (skip?.event.data as TaskEventData<'TaskSkipped'> | undefined)?.policy;
  const dropReason = d.action === 'dropped' ? dropReasonOf(d.policy, lateMs, misfire.catchUpWindow) : null;
  const by = claimed ? `, when ${claimed.node} claimed the task (${claimed.reason})` : '';
  const overloaded = d.cause === 'overload' ? ': the node was overloaded (more due work than it could do)' : '';
  const coalesced = into
    ? `coalesced it into the catch-up fire of ${into}`
    : `coalesced it into a catch-up of ${d.until}${skipPolicy ? `, which the overlap policy "${skipPolicy}" skipped: a fire was still running` : ''}`;
  return {
    summary: `missed: handled ${span(lateMs)} after it was due${by}${overloaded}; the misfire policy "${d.policy}" ${
      dropReason ? `dropped it: ${dropReason}` : coalesced
    }`,
    details: {
      action: d.action,
      policy: d.policy,
      range: { after: d.after, until: d.until, count: d.count },
      decidedAt: d.at,
      lateMs,
      cause: d.cause ?? null,
      ...(dropReason ? { dropReason } : { coalescedInto: into }),
      ...(skipPolicy ? { catchUpSkipped: { policy: skipPolicy } } : {}),
      catchUpWindow: misfire.catchUpWindow ?? null,
      maxCatchUp: misfire.maxCatchUp,
      threshold: misfire.threshold,
      claim: claimed ?? null,
    },
    cited: [claim, miss, catchUp ?? skip],
  };
};
