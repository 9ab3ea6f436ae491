/**
 * The open chat in the address (#thread-N) and in the browser's history, so
 * that Back closes a chat (the Android back gesture on a phone) and Forward
 * or an edited address opens one.
 *
 * - `push`: a chat opened from the list gets an entry of its own; switching
 *   to another chat replaces it (one Back always leads to the list); closing
 *   a chat goes back over its entry, so the list's entry is current again.
 * - `replace`: the address changes, the history does not grow.
 * - `none`: the browser already moved (Back, Forward, a typed #thread-N).
 * - `reload`: the page opened on a chat's address: the list's entry is put
 *   under it, so that Back leads to the list rather than out of the app.
 */
export type ThreadHistoryMode = 'push' | 'replace' | 'none' | 'reload';

const PATTERN = /^#thread-(\d+)$/;

/** The thread the address names, if any. */
export function threadInLocation(): number | undefined {
  const id = Number(PATTERN.exec(location.hash)?.[1]);
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

export function pushThreadEntry(previous: number | undefined, next: number | undefined, mode: ThreadHistoryMode): void {
  const list = `${location.pathname}${location.search}`;
  const url = next === undefined ? list : `#thread-${next}`;
  const state = next === undefined ? null : { thread: next };
  switch (mode) {
    case 'none':
      return;
    case 'replace':
      history.replaceState(state, '', url);
      return;
    case 'reload':
      history.replaceState(null, '', list);
      if (next !== undefined) history.pushState(state, '', url);
      return;
    case 'push':
      if (next === undefined) {
        // The chat's own entry: leave it by going back (its popstate finds the list already shown).
        if (previous !== undefined && (history.state as { thread?: unknown } | null)?.thread === previous) history.back();
        else history.replaceState(null, '', list);
      } else if (previous === undefined) {
        history.pushState(state, '', url);
      } else {
        history.replaceState(state, '', url);
      }
  }
}
