import { taskIdOfStream } from '../../domain/task/events.js';
import { LogVerifier, type VerifyReport } from '../../domain/verify/verifyLog.js';
import { decodeTaskEvent } from '../node/taskCodec.js';
import type { EventStore } from '../store/eventStore.js';

const PAGE = 5_000;

/** Reads the whole log, page by page, through the verifier: `kairos verify` and `GET /api/verify`. */
export const verifyStore = async (store: EventStore): Promise<VerifyReport & { position: number }> => {
  const verifier = new LogVerifier();
  let after = 0n;
  for (;;) {
    const page = await store.readAll({ after, maxCount: PAGE });
    for (const recorded of page) {
      const taskId = taskIdOfStream(recorded.stream);
      if (taskId === undefined) continue;
      const decoded = decodeTaskEvent(recorded);
      if (decoded.ok) verifier.add(taskId, Number(recorded.revision), decoded.event);
      else verifier.addUndecodable(taskId, Number(recorded.revision), decoded.error);
    }
    const last = page.at(-1);
    if (!last) break;
    after = last.position;
  }
  return { ...verifier.report(), position: Number(after) };
};
