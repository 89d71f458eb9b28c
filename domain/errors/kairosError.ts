/**
 * One error taxonomy for the whole system. Each kind has a stable `code`; the HTTP status for a code
 * lives in one table (`httpStatusOf`), so every adapter renders the same `{code, message, details}`.
 */
export const ErrorCode = {
  validation: 'validation_failed',
  notFound: 'not_found',
  alreadyExists: 'already_exists',
  illegalState: 'illegal_state',
  wrongExpectedVersion: 'wrong_expected_version',
  fenced: 'fenced',
  unavailable: 'unavailable',
  internal: 'internal',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export type ErrorDetails = Record<string, unknown> | readonly unknown[];

export class KairosError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: ErrorDetails } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** A field-level problem: `path` names the field as the caller wrote it, e.g. `schedule.cron`. */
export type FieldIssue = { path: string; message: string };

export class ValidationError extends KairosError {
  readonly issues: readonly FieldIssue[];
  constructor(issues: readonly FieldIssue[], message?: string) {
    super(
      ErrorCode.validation,
      message ?? issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '),
      { issues },
    );
    this.issues = issues;
  }
}

export class NotFoundError extends KairosError {
  constructor(what: string, id: string) {
    super(ErrorCode.notFound, `${what} '${id}' does not exist`, { [what]: id });
  }
}

export class AlreadyExistsError extends KairosError {
  constructor(what: string, id: string, hint?: string) {
    super(ErrorCode.alreadyExists, `${what} '${id}' already exists${hint ? `; ${hint}` : ''}`, { [what]: id });
  }
}

/** A command that does not fit the current lifecycle state; the message names that state. */
export class IllegalStateError extends KairosError {
  constructor(message: string, details?: ErrorDetails) {
    super(ErrorCode.illegalState, message, details);
  }
}

/** This node's lease epoch is older than the one recorded in the stream: it must give the task up. */
export class FencedError extends KairosError {
  constructor(taskId: string, ownEpoch: number, recordedEpoch: number) {
    super(
      ErrorCode.fenced,
      `task '${taskId}' is held at epoch ${recordedEpoch}; this node's epoch ${ownEpoch} is stale`,
      {
        taskId,
        ownEpoch,
        recordedEpoch,
      },
    );
  }
}

export const isKairosError = (e: unknown): e is KairosError => e instanceof KairosError;
export const isValidationError = (e: unknown): e is ValidationError => e instanceof ValidationError;
export const isNotFoundError = (e: unknown): e is NotFoundError => e instanceof NotFoundError;
export const isAlreadyExistsError = (e: unknown): e is AlreadyExistsError => e instanceof AlreadyExistsError;
export const isIllegalStateError = (e: unknown): e is IllegalStateError => e instanceof IllegalStateError;
export const isFencedError = (e: unknown): e is FencedError => e instanceof FencedError;

const statusByCode: Record<ErrorCode, number> = {
  validation_failed: 400,
  not_found: 404,
  already_exists: 409,
  illegal_state: 409,
  wrong_expected_version: 409,
  fenced: 409,
  unavailable: 503,
  internal: 500,
};

export const httpStatusOf = (code: ErrorCode): number => statusByCode[code];
