import { z } from 'zod';
import { ClusterEvent } from '../../domain/cluster/events.js';
import { occurredAtOf } from '../../domain/projections/occurredAt.js';
import type { ProjectedEvent } from '../../domain/projections/readModel.js';
import { CLUSTER_STREAM, EventMetadata, taskIdOfStream } from '../../domain/task/events.js';
import { decodeTaskEvent } from '../node/taskCodec.js';
import type { RecordedEvent } from '../store/eventStore.js';

/** The streams read models read: every task stream and the cluster stream. */
export const READ_MODEL_STREAMS = ['kairos-task-', CLUSTER_STREAM] as const;

export type DecodedLogEvent = { ok: true; event: ProjectedEvent } | { ok: false; position: number; error: string };

// Compiled as the task events are (`decodeTaskEvent`): every event has metadata.
const LoggedMetadata = z.compile(EventMetadata, { strict: true });
const LoggedClusterEvent = z.compile(ClusterEvent, { strict: true });

const metadataOf = (value: unknown): EventMetadata | null => {
  const parsed = LoggedMetadata.safeParse(value);
  return parsed.success ? parsed.data : null;
};

/**
 * A stored event as read models see it, validated (the log is a boundary: another writer, an import or
 * an older version may have put anything there). An event that does not decode is reported, and its
 * position still counts, so one bad event cannot stop the read side.
 */
export const decodeLogEvent = (recorded: RecordedEvent): DecodedLogEvent => {
  const position = Number(recorded.position);
  const taskId = taskIdOfStream(recorded.stream);
  if (taskId !== undefined) {
    const decoded = decodeTaskEvent(recorded);
    if (!decoded.ok) return { ok: false, position, error: decoded.error };
    // One object per event, fields written out: a rebuild makes millions of them.
    return {
      ok: true,
      event: {
        kind: 'task',
        position,
        stream: recorded.stream,
        revision: Number(recorded.revision),
        recordedAt: recorded.time.getTime(),
        occurredAt: occurredAtOf(decoded.event),
        metadata: metadataOf(recorded.metadata),
        taskId,
        event: decoded.event,
      },
    };
  }
  if (recorded.stream === CLUSTER_STREAM) {
    const parsed = LoggedClusterEvent.safeParse({ type: recorded.type, data: recorded.data });
    if (parsed.success)
      return {
        ok: true,
        event: {
          kind: 'cluster',
          position,
          stream: recorded.stream,
          revision: Number(recorded.revision),
          recordedAt: recorded.time.getTime(),
          occurredAt: occurredAtOf(parsed.data),
          metadata: metadataOf(recorded.metadata),
          event: parsed.data,
        },
      };
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      position,
      error: `${recorded.stream}@${recorded.revision} (${recorded.type}): ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
    };
  }
  return { ok: false, position, error: `${recorded.stream}: not a stream read models read` };
};
