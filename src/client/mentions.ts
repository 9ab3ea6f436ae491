import type { MemberJson, UserJson } from '../protocol/frames.js';

/** A member as `thread()` returns it, or a user. */
export type Mentionable = Pick<UserJson, 'id' | 'username'> | { readonly user: Pick<UserJson, 'id' | 'username'> };

/**
 * `@username` tokens: the `@` at the start or after a character that cannot
 * be in a username or an e-mail's local part (so `bob@example.org` mentions
 * nobody), then a username (letters, digits, `.`, `_`, `-`; 3–32, the server's
 * rule). A trailing `.` or `-` ends a sentence, not the name.
 */
const TOKEN = /(^|[^\p{L}\p{N}._@-])@([A-Za-z0-9][A-Za-z0-9._-]{1,31})/gu;

/**
 * The user ids a text mentions: each `@username` that names one of `members`
 * (compared without case, as usernames are), once each, in the order first
 * mentioned; at most 50 (the server's limit). Pass the result as `mentions` to
 * `send` or `edit`.
 */
export function parseMentions(text: string, members: ReadonlyArray<Mentionable | MemberJson>): number[] {
  const byName = new Map<string, number>();
  for (const member of members) {
    const user = 'user' in member ? member.user : member;
    byName.set(user.username.toLowerCase(), user.id);
  }
  const found: number[] = [];
  for (const match of text.matchAll(TOKEN)) {
    const name = (match[2] as string).toLowerCase();
    // "@bob." or "@bob-" at a sentence's end: the name is the longest member name the token starts with.
    const id = byName.get(name) ?? byName.get(name.replace(/[._-]+$/, ''));
    if (id !== undefined && !found.includes(id)) found.push(id);
    if (found.length === 50) break;
  }
  return found;
}
