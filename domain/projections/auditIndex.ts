import { z } from 'zod';
import type { DefinitionChange, EventMetadata, TaskEventOf } from '../task/events.js';
import { canonicalJson } from '../task/spec.js';
import { toMillis } from '../time/instant.js';
import type { ProjectedEvent, ReadModel, RowReader, RowWrite } from './readModel.js';
import { sealSpec, sealedSpecDiff, type SealedSpec } from './specDiff.js';

/**
 * The audit: one entry per change an operator (or anyone) made to a task's definition or state — created,
 * updated with what changed, paused, resumed, deleted, restored, fired by hand — with who, where, why and
 * under which correlation id. Entries are keyed by the task's stream revision, not the log position, so
 * an entry restored from a `TaskStateCaptured` after retention equals the one recorded live.
 */

export const AuditAction = {
  created: 'created',
  updated: 'updated',
  paused: 'paused',
  resumed: 'resumed',
  deleted: 'deleted',
  restored: 'restored',
  triggered: 'triggered',
} as const;
export type AuditAction = (typeof AuditAction)[keyof typeof AuditAction];

const ACTION_OF: Record<DefinitionChange['type'], AuditAction> = {
  TaskCreated: 'created',
  TaskUpdated: 'updated',
  TaskPaused: 'paused',
  TaskResumed: 'resumed',
  TaskDeleted: 'deleted',
  TaskRestored: 'restored',
};

// Only what the tables need; the spec's own schema would refuse the secret's marker (too short).
const Spec = z.record(z.string(), z.unknown());
const SpecChangeColumn = z.object({ path: z.string(), before: z.unknown(), after: z.unknown() });

export const AuditEntryRow = z.object({
  taskId: z.string(),
  /** The revision of the event in the task's stream. */
  revision: z.number(),
  /** When the change took effect (the event's `at`; a manual fire's `firedAt`), epoch ms. */
  at: z.number(),
  action: z.enum(AuditAction),
  /** `user:<name>` or `node:<id>`, as the event's metadata said; null when it said nothing. */
  actor: z.string().nullable(),
  /** The node the change was made through: the metadata's `node`, else a `node:<id>` actor's id. */
  node: z.string().nullable(),
  /** The operator's reason, when one was given. */
  reason: z.string().nullable(),
  correlationId: z.string().nullable(),
  /** What the definition change changed (every field, for `created`); empty for the other actions. */
  changes: z.array(SpecChangeColumn),
  /** The document after a `created`/`updated`, its webhook secret redacted; null otherwise. */
  spec: Spec.nullable(),
  /** The fire a `triggered` entry started; null otherwise. */
  fireId: z.string().nullable(),
});
export type AuditEntryRow = z.output<typeof AuditEntryRow>;

/**
 * Private to the model (the API never serves it): the task's last document, sealed (secret redacted,
 * only its hash kept), which the next `updated` entry is diffed against.
 */
export const AuditSpecRow = z.object({
  taskId: z.string(),
  /** The revision of the `TaskCreated`/`TaskUpdated` that set it. */
  revision: z.number(),
  spec: Spec,
  secretHash: z.number().nullable(),
});
export type AuditSpecRow = z.output<typeof AuditSpecRow>;

type AuditRows = { entries: AuditEntryRow; specs: AuditSpecRow };
type Write = RowWrite<AuditRows>;

/** A definition change as the live event or a capture's history tells it (a live event may lack metadata). */
type Recorded = Omit<DefinitionChange, 'actor'> & { actor: string | null };

const NODE_ACTOR = 'node:';

/** Where a change was made: the node the metadata names, else the node that acted on its own. */
const nodeOf = (node: string | undefined, actor: string | null): string | null =>
  node ?? (actor?.startsWith(NODE_ACTOR) ? actor.slice(NODE_ACTOR.length) : null);

const entryOf = (taskId: string, c: Recorded, sealed: SealedSpec | null, base: SealedSpec | null): AuditEntryRow => ({
  taskId,
  revision: c.revision,
  at: toMillis(c.at),
  action: ACTION_OF[c.type],
  actor: c.actor,
  node: nodeOf(c.node, c.actor),
  reason: c.reason ?? null,
  correlationId: c.correlationId ?? null,
  changes: sealed ? sealedSpecDiff(c.type === 'TaskCreated' ? null : base, sealed) : [],
  spec: sealed?.spec ?? null,
  fireId: null,
});

const specRowOf = (taskId: string, revision: number, sealed: SealedSpec): AuditSpecRow => ({
  taskId,
  revision,
  ...sealed,
});

const changeOf = (
  event: TaskEventOf<DefinitionChange['type']>,
  revision: number,
  metadata: EventMetadata | null,
): Recorded => ({
  revision,
  type: event.type,
  at: event.data.at,
  actor: metadata?.actor ?? null,
  ...(metadata?.correlationId === undefined ? {} : { correlationId: metadata.correlationId }),
  ...(metadata?.node === undefined ? {} : { node: metadata.node }),
  ...('spec' in event.data ? { spec: event.data.spec } : {}),
  ...(event.data.reason === undefined ? {} : { reason: event.data.reason }),
});

/** A definition event as it happens: its entry, and the document the next update is diffed against. */
const recordLive = (rows: RowReader<AuditRows>, taskId: string, c: Recorded): Write[] => {
  if (!c.spec) return [{ table: 'entries', row: entryOf(taskId, c, null, null) }];
  const sealed = sealSpec(c.spec);
  const kept = rows.get('specs', [taskId]);
  const base = kept ? { spec: kept.spec, secretHash: kept.secretHash } : null;
  const spec: Write = { table: 'specs', row: specRowOf(taskId, c.revision, sealed) };
  // An update whose previous document was truncated away (retention) cannot be diffed: the capture that
  // follows every truncation carries that document, and writes the entry then.
  if (c.type === 'TaskUpdated' && !base) return [spec];
  return [{ table: 'entries', row: entryOf(taskId, c, sealed, base) }, spec];
};

/**
 * A capture holds every definition change before it. Entries the model lacks, or got wrong (a stream read
 * from its truncation point may show an update without the document before it, or with some events
 * between them scavenged away), are written from it; a model that saw the whole stream writes nothing.
 */
const restore = (rows: RowReader<AuditRows>, taskId: string, history: readonly DefinitionChange[]): Write[] => {
  const writes: Write[] = [];
  let base: SealedSpec | null = null;
  let last: { revision: number; sealed: SealedSpec } | null = null;
  for (const c of history) {
    const sealed = c.spec ? sealSpec(c.spec) : null;
    const entry = entryOf(taskId, c, sealed, base);
    const recorded = rows.get('entries', [taskId, c.revision]);
    if (!recorded || canonicalJson(recorded) !== canonicalJson(entry)) writes.push({ table: 'entries', row: entry });
    if (sealed) {
      base = sealed;
      last = { revision: c.revision, sealed };
    }
  }
  const kept = rows.get('specs', [taskId]);
  if (last && (!kept || kept.revision < last.revision))
    writes.push({ table: 'specs', row: specRowOf(taskId, last.revision, last.sealed) });
  return writes;
};

const evolve = (rows: RowReader<AuditRows>, e: ProjectedEvent): Write[] => {
  if (e.kind !== 'task') return [];
  const event = e.event;
  switch (event.type) {
    case 'TaskCreated':
    case 'TaskUpdated':
    case 'TaskPaused':
    case 'TaskResumed':
    case 'TaskDeleted':
    case 'TaskRestored':
      return recordLive(rows, e.taskId, changeOf(event, e.revision, e.metadata));
    case 'TaskFired': {
      const d = event.data;
      if (d.trigger !== 'manual' || d.attempt !== 1) return [];
      const actor = e.metadata?.actor ?? null;
      const row: AuditEntryRow = {
        taskId: e.taskId,
        revision: e.revision,
        at: toMillis(d.firedAt),
        action: 'triggered',
        actor,
        // A manual fire is refused unless the receiving node holds the task, so the firing node is where
        // it was asked for, should the metadata not say.
        node: nodeOf(e.metadata?.node, actor) ?? d.node,
        reason: d.reason ?? null,
        correlationId: e.metadata?.correlationId ?? null,
        changes: [],
        spec: null,
        fireId: d.fireId,
      };
      return [{ table: 'entries', row }];
    }
    case 'TaskStateCaptured':
      return restore(rows, e.taskId, event.data.history.definitions);
    default:
      return [];
  }
};

/**
 * The audit read model (`audit`): table `entries` (one per definition change and manual fire, keyed by
 * task and stream revision) and the private table `specs`. Manual fires are not in a capture's history,
 * so a rebuild from a truncated stream shows only those still in it.
 */
export const auditIndex = (): ReadModel<AuditRows> => ({
  name: 'audit',
  version: 1,
  reads: 'tasks',
  tables: {
    entries: { row: AuditEntryRow, key: ['taskId', 'revision'] },
    specs: { row: AuditSpecRow, key: ['taskId'] },
  },
  evolve,
});
