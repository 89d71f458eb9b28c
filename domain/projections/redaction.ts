import type { TaskEvent } from '../task/events.js';
import type { TaskSpec } from '../task/spec.js';

/** How every view shows a webhook secret: that it is set, never its value. */
export const SECRET_SET = '(secret is set)';

/** The spec with its webhook secret, if any, replaced by `SECRET_SET`. */
export const redactSpec = (spec: TaskSpec): TaskSpec =>
  'http' in spec.target && spec.target.http.secret !== undefined
    ? { ...spec, target: { http: { ...spec.target.http, secret: SECRET_SET } } }
    : spec;

/** An event as the read side shows it: every spec it carries (a definition, a capture's state and history) redacted. */
export const redactEvent = (event: TaskEvent): TaskEvent => {
  switch (event.type) {
    case 'TaskCreated':
    case 'TaskUpdated':
      return { ...event, data: { ...event.data, spec: redactSpec(event.data.spec) } } as TaskEvent;
    case 'TaskStateCaptured': {
      const { state, history } = event.data;
      return {
        ...event,
        data: {
          ...event.data,
          state: { ...state, spec: state.spec && redactSpec(state.spec) },
          history: {
            ...history,
            definitions: history.definitions.map((d) => (d.spec ? { ...d, spec: redactSpec(d.spec) } : d)),
          },
        },
      };
    }
    default:
      return event;
  }
};
