import type { MessageJson } from '../client/node.js';

/**
 * The parts of `chatd chat`'s message lines that issue 21 added, pure so that
 * the unit tests read them: a message's number, its "(edited)" and
 * "[deleted]" marks, the quoted reply, the reactions, mentions of the reader
 * marked, short notices for changes, and search results with their hits
 * marked.
 */

/** A piece of a line to stand out (a mention of the reader, a search hit): bold on a terminal, `**…**` in a pipe. */
export interface Marked {
  readonly mark: string;
}
export type Segment = string | Marked;
/** One output line: plain text, or segments some of which are marked. */
export type Line = string | readonly Segment[];

/** The line as plain text, marks shown `**so**` (pipes, logs); `style` wraps them otherwise (a terminal). */
export function lineText(line: Line, style: (text: string) => string = (text) => `**${text}**`): string {
  if (typeof line === 'string') return line;
  return line.map((segment) => (typeof segment === 'string' ? segment : style(segment.mark))).join('');
}

/** `text` with the half-open UTF-16 ranges marked: sorted, overlapping or touching ones merged, out-of-range ones clipped. */
export function markRanges(text: string, ranges: ReadonlyArray<readonly [number, number]>): Segment[] {
  const merged: Array<[number, number]> = [];
  for (const [rawStart, rawEnd] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const start = Math.max(0, Math.min(rawStart, text.length));
    const end = Math.min(Math.max(rawEnd, start), text.length);
    if (end <= start) continue;
    const last = merged.at(-1);
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  const segments: Segment[] = [];
  let at = 0;
  for (const [start, end] of merged) {
    if (start > at) segments.push(text.slice(at, start));
    segments.push({ mark: text.slice(start, end) });
    at = end;
  }
  if (at < text.length || segments.length === 0) segments.push(text.slice(at));
  return segments;
}

/** `@name` tokens: a username is 3-32 of letters, digits, '.', '_', '-' (a trailing '.', '_' or '-' is punctuation). */
const MENTION = /(?<![A-Za-z0-9._@-])@([A-Za-z0-9][A-Za-z0-9._-]{1,31})/g;

function mentionTokens(text: string): Array<{ name: string; start: number; end: number }> {
  const tokens: Array<{ name: string; start: number; end: number }> = [];
  for (const match of text.matchAll(MENTION)) {
    const name = (match[1] as string).replace(/[._-]+$/, '');
    if (name.length < 3) continue;
    tokens.push({ name, start: match.index, end: match.index + 1 + name.length });
  }
  return tokens;
}

/** `text` with every `@me` marked (usernames compare without case). */
export function markMentionsOf(text: string, me: string | undefined): Segment[] {
  if (!me) return [text];
  const ranges = mentionTokens(text)
    .filter((token) => token.name.toLowerCase() === me.toLowerCase())
    .map((token): [number, number] => [token.start, token.end]);
  return ranges.length === 0 ? [text] : markRanges(text, ranges);
}

/** `👍 2 ❤️ 1`, in the order the emoji were first used; empty for none. */
export function reactionsText(reactions: MessageJson['reactions']): string {
  return (reactions ?? [])
    .filter((reaction) => reaction.user_ids.length > 0)
    .map((reaction) => `${reaction.emoji} ${reaction.user_ids.length}`)
    .join(' ');
}

/** Whether `userId` reacted with `emoji`: `/react` then takes it back. */
export function hasReacted(message: Pick<MessageJson, 'reactions'>, emoji: string, userId: number | undefined): boolean {
  return userId !== undefined && (message.reactions ?? []).some((reaction) => reaction.emoji === emoji && reaction.user_ids.includes(userId));
}

/** The first words of a text, at most `max` characters, on one line (`…` where cut). */
export function firstWords(text: string, max = 40): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if ([...flat].length <= max) return flat;
  const cut = [...flat].slice(0, max).join('');
  const space = cut.lastIndexOf(' ');
  return `${space > max / 2 ? cut.slice(0, space) : cut}…`;
}

/** `↪ reply to 3: first words`; `[deleted]` for a deleted target, and nothing more for one this run never saw. */
export function replyText(number: number, target: { readonly text: string; readonly deleted: boolean } | undefined): string {
  if (!target) return `↪ reply to ${number} (an earlier message)`;
  return `↪ reply to ${number}: ${target.deleted ? '[deleted]' : firstWords(target.text)}`;
}

/** What a change did, as the notice says it: `edited message 12`, `reacted 👍 to message 12`, `removed 👍 from message 12`, `deleted message 12`. */
export function changeNotice(
  actor: string,
  change: { readonly type: 'edit' } | { readonly type: 'delete' } | { readonly type: 'reaction'; readonly emoji: string; readonly on: boolean },
  number: number,
): string {
  switch (change.type) {
    case 'edit':
      return `* ${actor} edited message ${number}`;
    case 'delete':
      return `* ${actor} deleted message ${number}`;
    case 'reaction':
      return change.on ? `* ${actor} reacted ${change.emoji} to message ${number}` : `* ${actor} removed ${change.emoji} from message ${number}`;
  }
}

/** `2026-12-05 14:03` (local time): search results reach further back than today. */
export function dateTime(ms: number): string {
  const date = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}`;
}

/** A search result: `(7) [@bob] bob 2026-12-05 14:03: …the **hit** in context…`. */
export function searchResultLine(
  number: number,
  label: string,
  sender: string,
  createdAt: number,
  snippet: string,
  highlights: ReadonlyArray<readonly [number, number]>,
): Segment[] {
  const flat = snippet.replace(/[\r\n\t]/g, ' '); // same length: the offsets still point at the hits
  return [`(${number}) [${label}] ${sender} ${dateTime(createdAt)}: `, ...markRanges(flat, highlights)];
}
