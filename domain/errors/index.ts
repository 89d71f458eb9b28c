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
export { fieldIssuesOf, parseOrThrow } from './fromZod.js';
