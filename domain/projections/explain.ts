import type { ClusterEvent } from '../cluster/events.js';
import { occurredAtOf } from './occurredAt.js';
import { jitterOf, scheduleOfState } from '../task/decide.js';
import type { EventMetadata, TaskEvent } from '../task/events.js';
import type { Schedule } from '../task/schedule.js';
import { isRunning, type TaskState } from '../task/state.js';
import { toIso, toMillis } from '../time/instant.js';
import {
  fired,
  handlingOf,
  historyOf,
  indexAt,
  isClaim,
  isOwnership,
  isScheduledFire,
  iso,
  lastClusterEvent,
  lastIndexOf,
  misfired,
  oneShotFired,
  passesOver,
  runningFires,
  skipped,
  span,
  type Context,
  type Facts,
  type Finding,
  type History,
  type Pick,
  type Step,
} from './explainTick.js';

/**
 * Why a task did or did not fire around an instant (`GET /api/tasks/:id/explain?at=`, `kairos explain`):
 * the tick of the schedule in force then, what the log says happened to it, and the events that say so.
 * Pure: the task's stream, the cluster stream and "now" come in as data.
 */

/** One recorded event of the task's stream or of the cluster stream, as the explanation cites it. */
export type LoggedEvent<E> = { event: E; position: number; revision: number; metadata: EventMetadata | null };

export type ExplainQuestion = {
  taskId: string;
  /** The instant asked about (epoch ms). */
  at: number;
  /** When the question is asked: a tick after this is not due yet. */
  now: number;
  /** The task's stream as kept (it may start with a TaskStateCaptured after retention), in revision order. */
  task: ReadonlyArray<LoggedEvent<TaskEvent>>;
  /** The cluster stream (`kairos-cluster`), in order; empty for a single node. */
  cluster: ReadonlyArray<LoggedEvent<ClusterEvent>>;
};

/** What happened to the tick asked about. The strings are part of the API: never rename one. */
export const Verdict = {
  fired: 'fired',
  skipped: 'skipped',
  misfired: 'misfired',
  paused: 'paused',
  deleted: 'deleted',
  notCreated: 'not-created',
  notStarted: 'not-started',
  ended: 'ended',
  noOwner: 'no-owner',
  notDue: 'not-due',
  noTick: 'no-tick',
  unknown: 'unknown',
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

/** A recorded event an explanation rests on. */
export type Evidence = { position: number; revision: number; type: string; data: unknown; actor: string | null };

export type Explanation = {
  taskId: string;
  /** The instant asked about (ISO). */
  at: string;
  /** The scheduled tick the answer is about (ISO), or null when the schedule has none near `at`. */
  tick: string | null;
  verdict: Verdict;
  /** One or two sentences an operator reads. */
  summary: string;
  /** Facts behind the verdict, machine-readable (lateness, node, policy, window, reason, actor, ticks …). */
  details: Record<string, unknown>;
  /** The events that say so, in log order. */
  evidence: Evidence[];
};

/** Explains what happened to the tick nearest `question.at` (docs/events.md describes the events it reads). */
export const explainTick = (question: ExplainQuestion): Explanation => {
  const history = historyOf(question.taskId, question.task);
  const step = history.steps[indexAt(history.steps, question.at)];
  if (!step?.after.spec || step.after.status === 'absent') {
    const created = history.steps.find((s) => s.event.type === 'TaskCreated');
    return created || history.knownFrom === -Infinity
      ? answer(question, null, { verdict: Verdict.notCreated, ...notCreated(question, created) })
      : answer(question, null, { verdict: Verdict.unknown, ...creationTruncated(history) });
  }
  const grid = history.steps[step.grid];
  const ctx: Context = {
    question,
    history,
    state: step.after,
    spec: step.after.spec,
    schedule: scheduleOfState(step.after) as Schedule,
    since: grid?.after.cursor ?? -Infinity,
    definedBy: [grid, history.steps[step.definition]].filter((s): s is Step => s !== undefined),
  };
  const window = ctx.spec.schedule;
  if ('startAt' in window && window.startAt && question.at < toMillis(window.startAt)) {
    const first = ctx.schedule.next(ctx.since);
    return answer(question, first, {
      verdict: Verdict.notStarted,
      ...notStarted(ctx, toMillis(window.startAt), first),
    });
  }
  if ('endAt' in window && window.endAt && question.at > toMillis(window.endAt)) {
    const last = ctx.schedule.latest(ctx.since, toMillis(window.endAt), 1).ticks[0] ?? null;
    return answer(question, last, { verdict: Verdict.ended, ...endedAt(ctx, toMillis(window.endAt), last) });
  }
  const pick = pickTick(ctx);
  if (!pick) return answer(question, null, { verdict: Verdict.noTick, ...noTick(ctx) });
  const found = explainPick(ctx, pick);
  return answer(question, pick.tick, { ...found, details: { ...tickDetails(ctx, pick), ...found.details } });
};

/** The latest tick at or before `at`; else the next one, except for a one-shot (its tick is near or none is). */
const pickTick = ({ schedule, since, spec, question }: Context): Pick | null => {
  const latest = schedule.latest(since, question.at, 1).ticks[0];
  if (latest !== undefined) return { tick: latest, chosen: 'latest-at-or-before' };
  const next = 'at' in spec.schedule ? null : schedule.next(Math.max(since, question.at));
  return next === null ? null : { tick: next, chosen: 'next-after' };
};

/** The events that handled the tick settle it; otherwise, why nothing handled it. */
const explainPick = (ctx: Context, pick: Pick): Finding => {
  const { steps, knownFrom } = ctx.history;
  const { now, at } = ctx.question;
  const handled = handlingOf(steps, pick.tick);
  switch (handled?.event.type) {
    case 'TaskFired':
      // A one-shot fires once: asked about later, the answer is that nothing is left to fire.
      return 'at' in ctx.spec.schedule && handled.time < at
        ? { verdict: Verdict.ended, ...oneShotFired(ctx, pick, handled) }
        : { verdict: Verdict.fired, ...fired(ctx, handled) };
    case 'TaskSkipped':
      return { verdict: Verdict.skipped, ...skipped(ctx, handled) };
    case 'TaskMisfired':
      return { verdict: Verdict.misfired, ...misfired(ctx, pick, handled) };
  }
  const tickIndex = indexAt(steps, pick.tick);
  const status = steps[tickIndex]?.after.status;
  if (status === 'paused' || status === 'deleted') return { verdict: status, ...suspended(ctx, tickIndex, status) };
  if (pick.tick <= knownFrom) return { verdict: Verdict.unknown, ...truncated(ctx.history, pick) };
  const later = steps[indexAt(steps, Math.max(pick.tick, at))] as Step;
  const limit =
    later.after.spec && 'maxRuns' in later.after.spec.schedule ? later.after.spec.schedule.maxRuns : undefined;
  // Runs are counted from execution events, which a truncated stream lacks before its first capture.
  if (limit !== undefined && later.exact && later.after.runs >= limit) {
    return { verdict: Verdict.ended, ...runsUsedUp(ctx, later, limit) };
  }
  const current = (steps.at(-1) as Step).after;
  if (waitsForRun(current, pick.tick, now)) return { verdict: Verdict.notDue, ...buffered(ctx, current) };
  const dueAt = pick.tick + jitterOf(ctx.state, pick.tick);
  if (now - dueAt <= ctx.spec.misfire.threshold) return { verdict: Verdict.notDue, ...notDue(ctx, pick, dueAt) };
  return { verdict: Verdict.noOwner, ...noOwner(ctx, pick, tickIndex, dueAt) };
};

const cite = (item: Step | LoggedEvent<ClusterEvent>): Evidence => {
  const { event, position, revision, metadata } = 'cite' in item ? item.cite : item;
  return { position, revision, type: event.type, data: event.data, actor: metadata?.actor ?? null };
};

const answer = (question: ExplainQuestion, tick: number | null, found: Finding): Explanation => {
  const evidence = new Map<number, Evidence>();
  for (const cited of found.cited.filter((item) => item !== undefined).map(cite)) evidence.set(cited.position, cited);
  const { verdict, summary, details } = found;
  const sorted = [...evidence.values()].sort((a, b) => a.position - b.position);
  return {
    taskId: question.taskId,
    at: toIso(question.at),
    tick: iso(tick),
    verdict,
    summary,
    details,
    evidence: sorted,
  };
};

/** Where the tick sits in the schedule in force: which rule chose it, and its neighbours. */
const tickDetails = ({ schedule, since, spec }: Context, { tick, chosen }: Pick) => ({
  tickChosen: chosen,
  previousTick: iso(schedule.latest(since, tick - 1, 1).ticks[0]),
  nextTick: iso(schedule.next(tick)),
  schedule: spec.schedule,
  scheduleSince: iso(since),
});

const notCreated = (question: ExplainQuestion, created: Step | undefined): Facts => ({
  summary: created
    ? `the task did not exist yet: it was created at ${iso(created.time)} by ${created.actor}`
    : `no task '${question.taskId}' has been created`,
  details: { createdAt: iso(created?.time), createdBy: created?.actor ?? null },
  cited: [created],
});

const creationTruncated = ({ firstRevision, steps }: History): Facts => ({
  summary: `unknown: the stream starts at revision ${firstRevision} (truncated by retention) and keeps no record of the task's creation`,
  details: { truncatedBefore: firstRevision },
  cited: [steps[0]],
});

const notStarted = (ctx: Context, startAt: number, first: number | null): Facts => ({
  summary: `the schedule starts at ${iso(startAt)}; ${first === null ? 'it has no tick' : `its first tick is ${iso(first)}`}`,
  details: { startAt: iso(startAt), firstTick: iso(first), schedule: ctx.spec.schedule },
  cited: ctx.definedBy,
});

const endedAt = (ctx: Context, endAt: number, last: number | null): Facts => ({
  summary: `the schedule ended at ${iso(endAt)}; ${last === null ? 'it had no tick' : `its last tick was ${iso(last)}`}`,
  details: { endedBy: 'end-at', endAt: iso(endAt), lastTick: iso(last), schedule: ctx.spec.schedule },
  cited: ctx.definedBy,
});

const noTick = ({ schedule, since, spec, question, definedBy }: Context): Facts => {
  const previous = schedule.latest(since, question.at, 1).ticks[0];
  const next = schedule.next(Math.max(since, question.at));
  return {
    summary: `the schedule in force has no tick near ${iso(question.at)}: ${
      next === null ? 'it has none after it' : `its next tick is ${iso(next)}`
    }`,
    details: { previousTick: iso(previous), nextTick: iso(next), schedule: spec.schedule, scheduleSince: iso(since) },
    cited: definedBy,
  };
};

const SUSPENSIONS = {
  paused: { start: 'TaskPaused', end: 'TaskResumed', words: ['paused', 'resumed'] },
  deleted: { start: 'TaskDeleted', end: 'TaskRestored', words: ['deleted', 'restored'] },
} as const;

const suspended = (ctx: Context, tickIndex: number, verdict: 'paused' | 'deleted'): Facts => {
  const { start, end, words } = SUSPENSIONS[verdict];
  const { steps } = ctx.history;
  const from = steps[lastIndexOf(steps, tickIndex + 1, (s) => s.event.type === start)];
  const until = steps.find((s) => s.index > tickIndex && s.event.type === end);
  const reason = (from?.event.data as { reason?: string } | undefined)?.reason ?? null;
  return {
    summary: `${words[0]} at ${iso(from?.time)} by ${from?.actor}${reason ? ` ("${reason}")` : ''}: ticks are not due while ${
      words[0]
    }; ${until ? `${words[1]} at ${iso(until.time)} by ${until.actor}` : `not ${words[1]} since`}`,
    details: {
      [`${words[0]}At`]: iso(from?.time),
      [`${words[0]}By`]: from?.actor ?? null,
      reason,
      [`${words[1]}At`]: iso(until?.time),
      [`${words[1]}By`]: until?.actor ?? null,
    },
    cited: [from, until],
  };
};

const truncated = ({ capture, firstRevision, knownFrom, steps }: History, pick: Pick): Facts => {
  const cursorPastTick = capture ? pick.tick <= toMillis(capture.event.data.state.cursor) : null;
  return {
    summary: `unknown: retention truncated the stream before revision ${firstRevision} (${iso(knownFrom)}), and this tick's record with it${
      cursorPastTick ? `; the capture at revision ${capture?.revision} says it was handled or passed over` : ''
    }`,
    details: { truncatedBefore: firstRevision, knownFrom: iso(knownFrom), cursorPastTick },
    cited: [steps.find((s) => s.cite === capture)],
  };
};

const runsUsedUp = (ctx: Context, later: Step, limit: number): Facts => {
  const { steps } = ctx.history;
  const lastRun = steps[lastIndexOf(steps, later.index + 1, isScheduledFire)];
  const lastTick = (lastRun?.event.data as { scheduledAt?: string } | undefined)?.scheduledAt ?? null;
  return {
    summary: `ended: the schedule had run ${later.after.runs} of its maxRuns ${limit} time(s)${
      lastTick ? `; the last run was the tick of ${lastTick}` : ''
    }`,
    details: { endedBy: 'max-runs', maxRuns: limit, runs: later.after.runs, lastRun: lastTick },
    cited: [...ctx.definedBy, lastRun],
  };
};

/** buffer-one and buffer-all keep the ticks that fall due during a run: they fire once it completes. */
const waitsForRun = (current: TaskState, tick: number, now: number): boolean =>
  (current.spec?.overlap === 'buffer-one' || current.spec?.overlap === 'buffer-all') &&
  isRunning(current) &&
  current.cursor < tick &&
  tick <= now;

const buffered = (ctx: Context, current: TaskState): Facts => {
  const running = runningFires(ctx.history.steps, current.inFlight, ctx.history.steps.length);
  return {
    summary: `not due yet: the overlap policy "${current.spec?.overlap}" keeps it until the running fire of ${
      running[0]?.fire.scheduledAt
    } completes`,
    details: { overlap: current.spec?.overlap, running: running.map((r) => r.fire) },
    cited: running.map((r) => r.step),
  };
};

const notDue = (ctx: Context, pick: Pick, dueAt: number): Facts => {
  const { now } = ctx.question;
  const { threshold } = ctx.spec.misfire;
  return {
    summary:
      dueAt > now
        ? `not due yet: the tick is due at ${iso(dueAt)}, after now (${iso(now)})`
        : `not handled yet: due ${span(now - dueAt)} ago, within the misfire threshold of ${span(threshold)}`,
    details: { dueAt: iso(dueAt), now: iso(now), jitterMs: dueAt - pick.tick, threshold },
    cited: ctx.definedBy,
  };
};

const noOwner = (ctx: Context, pick: Pick, tickIndex: number, dueAt: number): Facts => {
  const { question, history, spec } = ctx;
  const { steps } = history;
  const owner = steps[tickIndex]?.after.owner ?? null;
  const holder = owner ?? steps[tickIndex]?.after.releasedBy ?? null;
  // From this instant on the tick counted as missed: what stood then is why nobody handled it.
  const lateAt = dueAt + spec.misfire.threshold;
  const ownership = steps[lastIndexOf(steps, tickIndex + 1, isOwnership)];
  const membership = lastClusterEvent(
    question.cluster,
    lateAt,
    (e) => (e.type === 'NodeLeft' || e.type === 'NodeJoined') && e.data.node === holder?.node,
  );
  const left = membership?.event.type === 'NodeLeft' ? membership : undefined;
  const placement = lastClusterEvent(question.cluster, lateAt, (e) => e.type === 'TasksUnplaceable');
  const unplaceable =
    placement?.event.type === 'TasksUnplaceable' && placement.event.data.taskIds.includes(question.taskId)
      ? placement
      : undefined;
  const laterClaim = steps.find((s) => s.index > tickIndex && isClaim(s));
  const claimed = laterClaim?.event.data as { node: string; reason: string } | undefined;
  const passedOver = steps.find((s) => s.index > tickIndex && passesOver(s, pick.tick));
  const summary = [
    `nothing handled it: due at ${iso(dueAt)}, ${span(question.now - dueAt)} ago, and no node fired, skipped or misfired it`,
    owner
      ? `; its recorded owner was ${owner.node} (epoch ${owner.epoch})`
      : holder
        ? `; no owner was recorded (${holder.node} had released it)`
        : '; no node had ever claimed it',
    left ? `, which left the cluster at ${iso(occurredAtOf(left.event))}` : '',
    unplaceable ? `; no live node matched its runOn (unplaceable since ${iso(occurredAtOf(unplaceable.event))})` : '',
    claimed ? `; ${claimed.node} claimed it later, at ${iso(laterClaim?.time)} (${claimed.reason})` : '',
    passedOver ? `; the ${passedOver.event.type} at ${iso(passedOver.time)} by ${passedOver.actor} passed over it` : '',
  ].join('');
  return {
    summary,
    details: {
      dueAt: iso(dueAt),
      overdueMs: question.now - dueAt,
      threshold: spec.misfire.threshold,
      owner,
      releasedBy: owner ? null : holder,
      ownerLeftAt: left ? iso(occurredAtOf(left.event)) : null,
      unplaceable: unplaceable !== undefined,
      laterClaim: claimed ? { ...claimed, at: iso(laterClaim?.time) } : null,
      passedOverBy: passedOver
        ? { type: passedOver.event.type, at: iso(passedOver.time), actor: passedOver.actor }
        : null,
    },
    cited: [...ctx.definedBy, ownership, left, unplaceable, laterClaim, passedOver],
  };
};
