import type { ClientMessage, UserJson } from '../../src/client/browser.js';

/**
 * `@username` mentions in the web client: what the composer's autocomplete
 * offers, and how a message's text is cut into plain runs and mentions to
 * draw them highlighted. Pure functions on strings (no DOM): tested alone.
 * Which user ids a text mentions is the SDK's `parseMentions` (the same
 * parse for every client); the ids travel with the message, so a mention
 * names a user even after a rename.
 */

/** The characters a username is made of (src/services/account-rules.ts). */
const NAME_CHAR = /[A-Za-z0-9._-]/;
/** Most suggestions the autocomplete lists at once. */
const MAX_SUGGESTIONS = 6;

/** The `@word` being typed at the caret: where its `@` is and what follows it so far. */
export interface MentionQuery {
  readonly start: number;
  readonly query: string;
}

/**
 * The mention being typed when the caret is just after `@` and name
 * characters, the `@` starting the text or following a space or an opening
 * bracket (so an e-mail address `ann@example.org` is not one).
 */
export function mentionQuery(text: string, caret: number): MentionQuery | undefined {
  let at = caret;
  while (at > 0 && NAME_CHAR.test(text[at - 1] ?? '')) at -= 1;
  if (text[at - 1] !== '@') return undefined;
  const before = text[at - 2];
  if (before !== undefined && !/[\s([{"'«]/.test(before)) return undefined;
  return { start: at - 1, query: text.slice(at, caret) };
}

/**
 * Members to offer for `query`: username or a word of the display name
 * starting with it (case-insensitive), usernames first, never the user
 * writing.
 */
export function mentionCandidates(query: string, members: readonly UserJson[], myUserId: number): UserJson[] {
  const q = query.toLowerCase();
  const byName = (user: UserJson): boolean => user.username.toLowerCase().startsWith(q);
  const byDisplay = (user: UserJson): boolean => user.display_name.toLowerCase().split(/\s+/).some((word) => word.startsWith(q));
  const others = members.filter((user) => user.id !== myUserId);
  const first = others.filter(byName);
  const then = others.filter((user) => !byName(user) && byDisplay(user));
  return [...first, ...then].slice(0, MAX_SUGGESTIONS);
}

/** The text with the typed `@query` replaced by `@username ` and where the caret goes after it. */
export function insertMention(text: string, mention: MentionQuery, caret: number, username: string): { text: string; caret: number } {
  const inserted = `@${username} `;
  const rest = text.slice(caret).replace(/^[A-Za-z0-9._-]*/, '').replace(/^ /, '');
  return { text: text.slice(0, mention.start) + inserted + rest, caret: mention.start + inserted.length };
}

/** A run of a message's text: plain, or a mention of a user (drawn highlighted). */
export interface TextRun {
  readonly text: string;
  readonly userId?: number;
}

/**
 * The text cut into runs, each `@username` of a user the message mentions
 * (by id) being its own run. A name that is not among the mentions stays
 * plain: the ids decide, not the characters, so a user named in passing who
 * is not a member is not drawn as mentioned.
 */
export function mentionRuns(text: string, mentioned: readonly UserJson[]): TextRun[] {
  if (mentioned.length === 0 || !text.includes('@')) return [{ text }];
  const byName = new Map(mentioned.map((user) => [user.username.toLowerCase(), user.id]));
  const runs: TextRun[] = [];
  let plain = 0;
  for (const match of text.matchAll(/(^|[^A-Za-z0-9._@-])@([A-Za-z0-9][A-Za-z0-9._-]*)/g)) {
    const start = (match.index ?? 0) + (match[1]?.length ?? 0);
    // "@bob." at the end of a sentence is bob.
    let name = match[2] ?? '';
    while (name && !byName.has(name.toLowerCase()) && /[._-]$/.test(name)) name = name.slice(0, -1);
    const userId = byName.get(name.toLowerCase());
    if (userId === undefined) continue;
    if (start > plain) runs.push({ text: text.slice(plain, start) });
    runs.push({ text: `@${name}`, userId });
    plain = start + 1 + name.length;
  }
  if (plain < text.length) runs.push({ text: text.slice(plain) });
  return runs;
}

/**
 * Whether `message` mentions the user `myUserId` (by id, as the sender's
 * client parsed it): the notification code asks this to notify even in a
 * muted thread. Never for the user's own messages, a deleted one, or a
 * change message.
 */
export function isMentioned(message: Pick<ClientMessage, 'mentions' | 'sender_id' | 'deleted' | 'change'>, myUserId: number): boolean {
  if (message.sender_id === myUserId || message.deleted || message.change) return false;
  return message.mentions?.includes(myUserId) ?? false;
}

