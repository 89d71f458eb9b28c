import { z } from 'zod';
import { ErrorCode, KairosError, ValidationError, fieldIssuesOf } from '../../../domain/errors/index.js';
import type { RecordedEvent } from '../eventStore.js';

/**
 * One event of an exported log, one JSON object per line (NDJSON), in log order. The same shape as
 * `GET /api/events` and `kairos events --format ndjson`, so their output imports too. `metadata` is
 * left out when the event has none, so that "none" and `null` survive a round trip as they were.
 */
export type LogLine = {
  id: string;
  stream: string;
  revision: number;
  type: string;
  data: unknown;
  metadata?: unknown;
  /** When the source store recorded it (an import cannot keep it: the target store stamps its own). */
  time: string;
  /** Position in the source log (not kept either: the target assigns its own, in the order of the import). */
  position: number;
};

export const logLineOf = (e: RecordedEvent): LogLine => ({
  id: e.id,
  stream: e.stream,
  revision: Number(e.revision),
  type: e.type,
  data: e.data,
  ...(e.metadata === undefined ? {} : { metadata: e.metadata }),
  time: e.time.toISOString(),
  position: Number(e.position),
});

// As the store's append rules: any UUID version (fire ids are v8, others v7; older logs hold v5 and v4).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const present = (value: unknown): boolean => value !== undefined;

/**
 * What an import accepts. Extra keys are ignored, so a file written by a later version still imports.
 * `time` and `position` are checked when present but not required: the target store assigns both.
 */
const LogLineSchema = z.object({
  id: z.string().regex(UUID, 'must be a UUID'),
  stream: z
    .string()
    .min(1, 'must not be empty')
    .refine((s) => !s.startsWith('$'), "must not start with '$' (system streams are not exported)"),
  revision: z.number().int('must be a whole number').min(0, 'must be >= 0').max(Number.MAX_SAFE_INTEGER),
  type: z.string().min(1, 'must not be empty'),
  data: z.unknown().refine(present, 'is required'),
  metadata: z.unknown().optional(),
  time: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' }).optional(),
  position: z.number().int('must be a whole number').min(0, 'must be >= 0').optional(),
});

export type ParsedLogLine = Pick<LogLine, 'id' | 'stream' | 'revision' | 'type' | 'data' | 'metadata'>;

/** A line of an NDJSON log that cannot be imported; the issues name the line and the field. */
export class LogLineError extends ValidationError {
  readonly line: number;
  constructor(line: number, issues: ReadonlyArray<{ path: string; message: string }>) {
    super(issues.map((i) => ({ path: `line ${line}${i.path ? `: ${i.path}` : ''}`, message: i.message })));
    this.line = line;
  }
}

export const isLogLineError = (e: unknown): e is LogLineError => e instanceof LogLineError;

/** Parses and validates line `line` (1-based) of an export; throws a LogLineError naming each bad field. */
export const parseLogLine = (text: string, line: number): ParsedLogLine => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LogLineError(line, [{ path: '', message: `is not JSON: ${(e as Error).message}` }]);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new LogLineError(line, [{ path: '', message: 'must be a JSON object (one event)' }]);
  const result = LogLineSchema.safeParse(json);
  if (!result.success) throw new LogLineError(line, fieldIssuesOf(result.error, json));
  const { id, stream, revision, type, data, metadata } = result.data;
  return { id, stream, revision, type, data, ...(metadata === undefined ? {} : { metadata }) };
};

/**
 * The target holds a different event where the file has one: the stream diverged from the exported
 * log. Nothing after it in that stream is written.
 */
export class ImportConflictError extends KairosError {
  readonly stream: string;
  readonly revision: number;
  constructor(stream: string, revision: number, line: number, fileId: string, storedId: string) {
    super(
      ErrorCode.alreadyExists,
      `stream '${stream}' already holds another event at revision ${revision} (${storedId}; line ${line} of the file has ${fileId}): ` +
        'the target log diverged from the exported one; nothing after it in that stream was imported',
      { stream, revision, line, fileId, storedId },
    );
    this.stream = stream;
    this.revision = revision;
  }
}

export const isImportConflictError = (e: unknown): e is ImportConflictError => e instanceof ImportConflictError;
