import type { Command } from 'commander';

/** Flags that build or change a task document, so simple tasks need no file. */
export type TaskFlags = {
  name?: string;
  cron?: string;
  timezone?: string;
  every?: string;
  delayAfter?: string;
  at?: string;
  topic?: string;
  http?: string;
  payload?: string;
  overlap?: string;
  misfire?: string;
  maxAttempts?: string;
  timeout?: string;
};

export const withTaskFlags = (command: Command): Command =>
  command
    .option('--name <name>', 'display name')
    .option('--cron <expr>', 'cron expression, seconds optional ("*/5 * * * * *")')
    .option('--timezone <zone>', 'IANA time zone of the cron expression', undefined)
    .option('--every <duration>', 'fixed rate ("1s", "15m")')
    .option('--delay-after <duration>', 'fixed delay after each completion')
    .option('--at <iso>', 'one-shot at an instant (ISO-8601)')
    .option('--topic <topic>', 'deliver to event subscribers of this topic')
    .option('--http <url>', 'deliver as an HTTP POST to this URL')
    .option('--payload <json>', 'JSON payload sent with every fire')
    .option('--overlap <policy>', 'skip | buffer-one | buffer-all | allow | cancel-previous')
    .option('--misfire <policy>', 'fire-once | fire-all | skip')
    .option('--max-attempts <n>', 'attempts per fire, first included')
    .option('--timeout <duration>', 'per-attempt timeout');

/**
 * Applies flags over a document (a new one, or the current spec for `update`). Values stay as the user
 * typed them: the node validates and names any bad field.
 */
export const applyTaskFlags = (doc: Record<string, unknown>, flags: TaskFlags): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...doc };
  if (flags.name !== undefined) out.name = flags.name;
  const schedule =
    flags.cron !== undefined
      ? { cron: flags.cron, ...(flags.timezone ? { timezone: flags.timezone } : {}) }
      : flags.every !== undefined
        ? { every: flags.every }
        : flags.delayAfter !== undefined
          ? { delayAfter: flags.delayAfter }
          : flags.at !== undefined
            ? { at: flags.at }
            : undefined;
  if (schedule) out.schedule = schedule;
  else if (flags.timezone !== undefined && typeof out.schedule === 'object' && out.schedule)
    out.schedule = { ...out.schedule, timezone: flags.timezone };
  if (flags.topic !== undefined) out.target = { topic: flags.topic };
  if (flags.http !== undefined) out.target = { http: { url: flags.http } };
  if (flags.payload !== undefined) {
    try {
      out.payload = JSON.parse(flags.payload);
    } catch {
      throw new Error(`--payload must be JSON, got ${flags.payload}`);
    }
  }
  if (flags.overlap !== undefined) out.overlap = flags.overlap;
  if (flags.misfire !== undefined)
    out.misfire = { ...((out.misfire as object | undefined) ?? {}), policy: flags.misfire };
  if (flags.maxAttempts !== undefined) {
    // A number when it reads as one; otherwise the text goes as typed (`Number` would send NaN, i.e. null).
    const n = Number(flags.maxAttempts);
    out.retry = {
      ...((out.retry as object | undefined) ?? {}),
      maxAttempts: flags.maxAttempts.trim() !== '' && Number.isFinite(n) ? n : flags.maxAttempts,
    };
  }
  if (flags.timeout !== undefined) out.timeout = flags.timeout;
  return out;
};
