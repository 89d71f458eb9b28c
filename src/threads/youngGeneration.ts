/**
 * How large V8's young generation may grow in the processes and threads that fold the whole log (the
 * read side's process, an offline rebuild's threads, the CLI that runs `kairos replay`). Folding
 * allocates a decoded event, a row and a state per event and keeps a page of rows until its commit:
 * with the default semi-space (16 MB) most of that is copied out of the young generation before it
 * dies. 64 MB measured: a full rebuild of 1,004,000 events in 15.2 s instead of 17.4–20.3 s, 24 s of
 * CPU instead of 29–34 (docs/benchmarks.md, "Read side"). It is a ceiling the heap grows to only
 * under that load. The CLI's shebang (src/cli/main.ts) spells the same flag.
 */
export const SEMI_SPACE_MB = 64;

/** The flag for a process started with node's own options (`execArgv`). */
export const semiSpaceFlag = `--max-semi-space-size=${SEMI_SPACE_MB}`;

/** The same for a worker thread: V8's young generation is its two semi-spaces and a large-object space as big. */
export const youngGenerationLimits = { maxYoungGenerationSizeMb: 3 * SEMI_SPACE_MB };
