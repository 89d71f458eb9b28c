import cliProgress from 'cli-progress';

/** A progress bar on stderr, for long commands (`kairos export`, `kairos import`). */
export type ProgressBar = {
  /** Shows `done` of `total` under `label`; a new label starts a new bar (a new phase). */
  update(label: string, done: number, total: number, detail: string): void;
  stop(): void;
};

const silent: ProgressBar = { update: () => undefined, stop: () => undefined };

/**
 * A cli-progress bar on stderr; nothing at all when stderr is not a terminal (a pipe, a log file, a
 * test) or with `quiet`, so scripts' output stays clean.
 */
export const openProgressBar = (quiet: boolean): ProgressBar => {
  if (quiet || !process.stderr.isTTY) return silent;
  let bar: cliProgress.SingleBar | undefined;
  let phase: string | undefined;
  return {
    update(label, done, total, detail) {
      if (label !== phase) {
        bar?.stop();
        phase = label;
        bar = new cliProgress.SingleBar({
          format: '{label} [{bar}] {percentage}% | {detail} | ETA {eta_formatted}',
          stream: process.stderr,
          hideCursor: true,
          barsize: 30,
        });
        bar.start(total, done, { label, detail });
      } else bar?.update(done, { detail });
    },
    stop() {
      bar?.stop();
      bar = undefined;
      phase = undefined;
    },
  };
};
