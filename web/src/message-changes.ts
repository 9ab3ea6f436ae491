import type { ClientMessage } from '../../src/client/browser.js';

/** One emoji's reactions: who, in the order they reacted. */
export type ReactionJson = NonNullable<ClientMessage['reactions']>[number];

/**
 * How a message on screen takes a change (an edit, a delete for everyone, a
 * reaction toggled) that arrived live: pure functions, tested alone. The
 * server's history already gives each message in its latest state; these
 * keep the messages already on screen in step with it without fetching
 * them again.
 */

/** What a change message says (docs/protocol.md, "Requests: changing messages"). */
export type Change =
  | { readonly type: 'edit'; readonly message_id: number }
  | { readonly type: 'delete'; readonly message_id: number }
  | { readonly type: 'reaction'; readonly message_id: number; readonly emoji: string; readonly on: boolean };

/**
 * The message after `change`, made by `row` (the change message: its sender
 * reacted, its body is the edit's new body). Edits and reactions to a
 * deleted message change nothing (the server refuses them; a late one must
 * not bring a body back).
 */
export function applyChange(target: ClientMessage, change: Change, row: Pick<ClientMessage, 'sender_id' | 'created_at' | 'body' | 'mentions' | 'e2e'> | undefined): ClientMessage {
  if (change.type === 'delete') return deletedState(target);
  if (target.deleted) return target;
  if (change.type === 'reaction') {
    if (!row) return target;
    const reactions = toggled(target.reactions ?? [], change.emoji, row.sender_id, change.on);
    const { reactions: _old, ...rest } = target;
    return reactions.length > 0 ? { ...rest, reactions } : rest;
  }
  // An erased edit (body null: the message was deleted for everyone since) changes nothing; its delete follows.
  if (!row || row.body === null) return target;
  const { mentions: _old, ...rest } = target;
  return {
    ...rest,
    body: row.body,
    edited_at: row.created_at,
    ...(row.mentions && row.mentions.length > 0 ? { mentions: row.mentions } : {}),
    // An encrypted edit is opened like a message: a failure to open it shows as the message's problem.
    ...(target.e2e && row.e2e ? { e2e: row.e2e } : {}),
  };
}

/** A message deleted for everyone: a tombstone that keeps its place (seq, sender, time), nothing of what it said. */
export function deletedState(message: ClientMessage): ClientMessage {
  const { attachments: _a, reactions: _r, mentions: _m, edited_at: _e, ...rest } = message;
  return { ...rest, body: null, deleted: true };
}

/** The reactions with `userId`'s `emoji` switched on or off, first-reacted order kept, empty emoji gone. */
export function toggled(reactions: readonly ReactionJson[], emoji: string, userId: number, on: boolean): ReactionJson[] {
  const out: ReactionJson[] = [];
  let found = false;
  for (const reaction of reactions) {
    if (reaction.emoji !== emoji) {
      out.push(reaction);
      continue;
    }
    found = true;
    const others = reaction.user_ids.filter((id) => id !== userId);
    const users = on ? [...others, userId] : others;
    if (users.length > 0) out.push({ emoji, user_ids: users });
  }
  if (!found && on) out.push({ emoji, user_ids: [userId] });
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
