/**
 * A statement whose LIMIT is written into its text, prepared once per limit.
 *
 * SQLite (3.4x and later, as bundled by better-sqlite3) reads the value bound to
 * a `LIMIT ?` when it plans the query, so such a statement is marked expired
 * whenever that parameter is bound again and is parsed and planned anew at every
 * run: about 10 µs each time, measured. The callers use one or a few limits (a
 * page size, the push batch and concurrency), so each is prepared once here.
 * `sql` receives the limit as a checked integer, never as caller text.
 */
export function byLimit<S>(prepare: (limit: number) => S, mostKept = 16): (limit: number) => S {
  const kept = new Map<number, S>();
  return (limit) => {
    if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`a LIMIT must be a non-negative integer, not ${limit}`);
    let statement = kept.get(limit);
    if (statement === undefined) {
      statement = prepare(limit);
      // Limits beyond the few expected are prepared per call, as `LIMIT ?` was: memory stays bounded.
      if (kept.size < mostKept) kept.set(limit, statement);
    }
    return statement;
  };
}
