export {
  AlreadyExistsError,
  ErrorCode,
  FencedError,
  IllegalStateError,
  KairosError,
  NotFoundError,
  ValidationError,
  httpStatusOf,
  isAlreadyExistsError,
  isFencedError,
  isIllegalStateError,
  isKairosError,
  isNotFoundError,
  isValidationError,
} from './kairosError.js';
export type { ErrorDetails, FieldIssue } from './kairosError.js';
export { MAX_DEPTH, fieldIssuesOf, joinPath, parseOrThrow, valueAt } from './fromZod.js';
