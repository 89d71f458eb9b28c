import { ClusterEvent } from '../../domain/cluster/events.js';
import { occurredAtOf } from '../../domain/projections/occurredAt.js';
import type { ProjectedEvent } from '../../domain/projections/readModel.js';
import { CLUSTER_STREAM, EventMetadata, taskIdOfStream } from '../../domain/task/events.js';
import { decodeTaskEvent } from '../node/taskCodec.js';
import type { RecordedEvent } from '../store/eventStore.js';

/** The streams read models read: every task stream and the cluster stream. */
export const READ_MODEL_STREAMS = ['kairos-task-', CLUSTER_STREAM] as const;

export type DecodedLogEvent = { ok: true; event: ProjectedEvent } | { ok: false; position: number; error: string };

/**
 * A stored event as read models see it, validated (the log is a boundary: another writer, an import or
 * an older version may have put anything there). An event that does not decode is reported, and its
 * position still counts, so one bad event cannot stop the read side.
 */
export const decodeLogEvent = (recorded: RecordedEvent): DecodedLogEvent => {
  const metadata = EventMetadata.safeParse(recorded.metadata);
  const base = {
    position: Number(recorded.position),
    stream: recorded.stream,
    revision: Number(recorded.revision),
    recordedAt: recorded.time.getTime(),
    metadata: metadata.success ? metadata.data : null,
  };
  const taskId = taskIdOfStream(recorded.stream);
  if (taskId !== undefined) {
    const decoded = decodeTaskEvent(recorded);
    return decoded.ok
      ? {
          ok: true,
          event: { ...base, occurredAt: occurredAtOf(decoded.event), kind: 'task', taskId, event: decoded.event },
        }
      : { ok: false, position: base.position, error: decoded.error };
  }
  if (recorded.stream === CLUSTER_STREAM) {
    const parsed = ClusterEvent.safeParse({ type: recorded.type, data: recorded.data });
    if (parsed.success)
      return {
        ok: true,
        event: { ...base, occurredAt: occurredAtOf(parsed.data), kind: 'cluster', event: parsed.data },
      };
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      position: base.position,
      error: `${recorded.stream}@${recorded.revision} (${recorded.type}): ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
    };
  }
  return { ok: false, position: base.position, error: `${recorded.stream}: not a stream read models read` };
};
