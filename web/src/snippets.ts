/**
 * A search result's snippet cut into runs, the hits (UTF-16 [start, end)
 * offsets from the server or the SDK's local index) marked. Offsets out of
 * range or overlapping are clipped rather than trusted: a snippet is shown
 * whatever they say.
 */
export function highlightRuns(snippet: string, highlights: ReadonlyArray<readonly [number, number]>): { text: string; hit: boolean }[] {
  const runs: { text: string; hit: boolean }[] = [];
  let at = 0;
  for (const [rawStart, rawEnd] of [...highlights].sort((a, b) => a[0] - b[0])) {
    const start = Math.max(at, Math.min(snippet.length, rawStart));
    const end = Math.max(start, Math.min(snippet.length, rawEnd));
    if (end === start) continue;
    if (start > at) runs.push({ text: snippet.slice(at, start), hit: false });
    runs.push({ text: snippet.slice(start, end), hit: true });
    at = end;
  }
  if (at < snippet.length) runs.push({ text: snippet.slice(at), hit: false });
  return runs;
}
