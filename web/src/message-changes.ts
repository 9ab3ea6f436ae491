import { type ChangeJson, type ClientMessage, type SearchResult, applyChange, deletedState } from '../../src/client/browser.js';

/**
 * How a message on screen takes a change (an edit, a delete for everyone, a
 * reaction toggled) that arrived live, by the SDK's own rules (its
 * `applyChange`): pure functions, tested alone. The server's history
 * already gives each message in its latest state; these keep the messages
 * already on screen, and the search results, in step with it without
 * fetching them again.
 */

/** About as long as the snippets search gives (the SDK's, src/client/search-snippet.ts). */
const SNIPPET_LENGTH = 160;

/**
 * `target` after `change`, made by `by` (the change message: its sender
 * reacted, its body is the edit's new body). A delete needs no `by` (the
 * user's own, shown at once); an edit or reaction without it changes nothing.
 */
export function changedMessage(target: ClientMessage, change: ChangeJson, by: ClientMessage | undefined): ClientMessage {
  if (change.type === 'delete') return deletedState(target);
  return by ? applyChange(target, { ...by, change }) : target;
}

/**
 * Search results after one message changed (`update` gives its new state).
 * A message deleted for everyone is no longer a hit. An edited one stays
 * where it was, showing its new text without marks: the words found were in
 * the old text, and the search is not run again (the new text may no longer
 * match; running the search again finds what does). A reaction shows nothing
 * here: the hit only takes the new message.
 */
export function hitsAfterChange(results: readonly SearchResult[], messageId: number, change: ChangeJson, update: (message: ClientMessage) => ClientMessage): SearchResult[] {
  const out: SearchResult[] = [];
  for (const hit of results) {
    if (hit.message.id !== messageId) {
      out.push(hit);
      continue;
    }
    const message = update(hit.message);
    if (change.type === 'delete' || message.deleted) continue;
    out.push(change.type === 'edit' ? { ...hit, message, snippet: clipped(plainText(message) ?? ''), highlights: [] } : { ...hit, message });
  }
  return out;
}

/** Whether `userId` reacted with `emoji`. */
export function reacted(message: Pick<ClientMessage, 'reactions'>, emoji: string, userId: number): boolean {
  return message.reactions?.some((reaction) => reaction.emoji === emoji && reaction.user_ids.includes(userId)) ?? false;
}

/** The text a message shows for its body, or undefined when it has none (files alone, a problem to show instead). */
export function plainText(message: Pick<ClientMessage, 'body'>): string | undefined {
  const text = (message.body as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : undefined;
}

/** The start of `text`, `…` where cut, never between the halves of a surrogate pair. */
function clipped(text: string): string {
  if (text.length <= SNIPPET_LENGTH) return text;
  let end = SNIPPET_LENGTH;
  const code = text.charCodeAt(end);
  if (code >= 0xdc00 && code <= 0xdfff) end -= 1;
  return `${text.slice(0, end)}…`;
}
