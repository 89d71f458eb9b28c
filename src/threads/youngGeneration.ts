/**
 * How large V8's young generation may grow where Kairos replays and folds its log: the node (`npm
 * start` and the image pass the flag), the read side's process, the thread of `kairos replay` with
 * the node down and its rebuild's second thread. Replaying and folding allocate a decoded event, a
 * row and a state per event, and a rebuild keeps a page of rows until its commit: with V8's default
 * 16 MB semi-space most of that is copied out of the young generation before it dies. Measured with
 * 64 MB (docs/benchmarks.md): a full rebuild of 1,004,000 events 17.4–20.3 s → 14.3–15.4 s (CPU
 * 29–34 s → 23–25 s); a node's replay at start (`recovery`, 100,000 tasks) 94,572 / 95,533 →
 * 109,582 / 111,061 events/s; firing 10,000 tasks a second no worse. A ceiling the heap grows to only
 * under that load. Not in the CLI's shebang: any V8 flag there makes every command start ~15 %
 * slower (V8's code cache no longer matches), for the one command that needs it.
 */
const SEMI_SPACE_MB = 64;

/** The flag for a process started with node's own options (`execArgv`, a shebang, a start script). */
export const semiSpaceFlag = `--max-semi-space-size=${SEMI_SPACE_MB}`;

/** The same for a worker thread: V8's young generation is its two semi-spaces and a large-object space as big. */
export const youngGenerationLimits = { maxYoungGenerationSizeMb: 3 * SEMI_SPACE_MB };
