/**
 * One of `count` disjoint parts of the log, by stream: every event of a stream falls in the same part,
 * every stream in exactly one, the parts together the whole log. How a rebuild shares the log between
 * threads (each folds whole streams, in order) without each thread reading and decoding every event.
 * Which part a stream falls in is the adapter's to say, the same for every read of one store:
 * `partitionOf` for the in-memory and EventStoreDB adapters, `partitionSql` in SQLite (the same part
 * but for names holding U+0000, where SQLite's text functions stop).
 */
export type StreamPartition = { count: number; index: number };

/** Most partitions a read may ask for. */
export const MAX_PARTITIONS = 64;

/**
 * The part a stream falls in: its last three code points (weighted, so names that differ by one
 * character, `job-17` and `job-18`, spread) and its length, modulo `count`. Simple enough for SQLite
 * to compute in the read itself (`partitionSql`), so a part's rows are never handed to JavaScript.
 */
export const partitionOf = (stream: string, count: number): number => {
  const chars = Array.from(stream);
  const at = (fromEnd: number): number => chars[chars.length - fromEnd]?.codePointAt(0) ?? 0;
  return (at(1) + 3 * at(2) + 7 * at(3) + chars.length) % count;
};

/**
 * `partitionOf` in SQLite, over the `stream` column: `substr` and `length` count code points of TEXT
 * as `Array.from` does (stream names are well-formed), and `unicode` of nothing is NULL, hence 0.
 */
export const partitionSql = (count: number): string =>
  `((coalesce(unicode(substr(stream, -1, 1)), 0) + 3 * coalesce(unicode(substr(stream, -2, 1)), 0)` +
  ` + 7 * coalesce(unicode(substr(stream, -3, 1)), 0) + length(stream)) % ${count})`;

/** Whether `stream` is in `partition` by `partitionOf` (any stream, without one): for adapters that filter read events themselves. */
export const inPartition = (stream: string, partition: StreamPartition | undefined): boolean =>
  !partition || partitionOf(stream, partition.count) === partition.index;
