import type { ChangeJson, ReactionJson } from '../protocol/frames.js';
import type { ClientMessage } from './e2e-types.js';

/**
 * Change messages (docs/protocol.md): an edit, a delete for everyone or a
 * reaction is appended to the thread like a message, with `change` naming its
 * target. The client never gives one to the app as a `message`; it applies it
 * to the copy of the target it holds and says so (`message_changed`).
 */

/** What `message_changed` carries. */
export interface MessageChange {
  readonly threadId: number;
  /** The changed message (the change's target). */
  readonly messageId: number;
  readonly change: ChangeJson;
  /** The target's new state, when the client had it (from a `message` event, `history` or `jump`). */
  readonly message?: ClientMessage;
  /** The change message itself: its sender (who reacted), its time; for an edit its new body (decrypted), kind and mentions. */
  readonly by: ClientMessage;
}

/** What `message_hidden` carries: the message was deleted for this user (on this device or another). */
export interface MessageHidden {
  readonly threadId: number;
  readonly messageId: number;
}

export function isChange(message: { readonly change?: ChangeJson }): message is ClientMessage & { readonly change: ChangeJson } {
  return message.change !== undefined;
}

/**
 * The target after a change message. An edit takes the new body and mentions
 * (attachments are not edited: an encrypted edit carries the files again
 * inside, and those are the ones that open); one that did not open (`e2e`
 * status other than ok) leaves the message showing that status; an erased one
 * (`body: null`: the message was deleted for everyone since) is ignored. A delete
 * leaves a tombstone. A reaction adds or takes back the change sender's.
 */
export function applyChange(target: ClientMessage, row: ClientMessage & { readonly change: ChangeJson }): ClientMessage {
  const change = row.change;
  switch (change.type) {
    case 'edit': {
      // An erased edit (the message was deleted for everyone since) changes nothing: its delete follows.
      if (target.deleted || row.body === null) return target;
      const { mentions: _mentions, e2e: _e2e, ...rest } = target;
      const attachments = row.kind === 'e2e' ? (row.attachments ?? target.attachments) : target.attachments;
      const { attachments: _attachments, ...withoutFiles } = rest;
      return {
        ...withoutFiles,
        body: row.body,
        edited_at: row.created_at,
        ...(attachments && attachments.length > 0 ? { attachments } : {}),
        ...(row.mentions && row.mentions.length > 0 ? { mentions: row.mentions } : {}),
        ...(row.e2e ? { e2e: row.e2e } : target.e2e ? { e2e: target.e2e } : {}),
      };
    }
    case 'delete':
      return deletedState(target);
    case 'reaction': {
      if (target.deleted) return target;
      const reactions = toggled(target.reactions ?? [], change.emoji, row.sender_id, change.on);
      const { reactions: _reactions, ...rest } = target;
      return reactions.length > 0 ? { ...rest, reactions } : rest;
    }
  }
}

/** A message deleted for everyone: a tombstone that keeps its place (seq, sender, time), nothing of what it said or carried. */
export function deletedState(target: ClientMessage): ClientMessage {
  const { attachments: _a, reactions: _r, mentions: _m, e2e: _e, edited_at: _t, ...rest } = target;
  return { ...rest, body: null, deleted: true };
}

/** Reactions in first-used order; an emoji nobody uses any more is dropped. */
export function toggled(reactions: readonly ReactionJson[], emoji: string, userId: number, on: boolean): ReactionJson[] {
  const result: ReactionJson[] = [];
  let found = false;
  for (const reaction of reactions) {
    if (reaction.emoji !== emoji) {
      result.push(reaction);
      continue;
    }
    found = true;
    if (on) {
      result.push(reaction.user_ids.includes(userId) ? reaction : { emoji, user_ids: [...reaction.user_ids, userId] });
      continue;
    }
    const others = reaction.user_ids.filter((id) => id !== userId);
    if (others.length > 0) result.push({ emoji, user_ids: others });
  }
  if (!found && on) result.push({ emoji, user_ids: [userId] });
  return result;
}

/**
 * The messages the client has handed out (`message` events, `history`,
 * `jump`), the newest uses kept, so that a change can say what its target
 * looks like now and `edit` knows the target's thread and kind. Bounded: the
 * least recently seen go first.
 */
export class MessageCache {
  private readonly messages = new Map<number, ClientMessage>();

  constructor(private readonly capacity = 5000) {}

  get size(): number {
    return this.messages.size;
  }

  get(messageId: number): ClientMessage | undefined {
    return this.messages.get(messageId);
  }

  /** A content message (change messages are not kept: they are applied). */
  put(message: ClientMessage): void {
    if (isChange(message) || this.capacity <= 0) return;
    this.messages.delete(message.id);
    this.messages.set(message.id, message);
    if (this.messages.size > this.capacity) this.messages.delete(this.messages.keys().next().value as number);
  }

  /** Applies a change message to its target, when held; returns the target's new state. */
  apply(row: ClientMessage & { readonly change: ChangeJson }): ClientMessage | undefined {
    const target = this.messages.get(row.change.message_id);
    if (!target) return undefined;
    const updated = applyChange(target, row);
    this.messages.set(target.id, updated);
    return updated;
  }

  remove(messageId: number): void {
    this.messages.delete(messageId);
  }

  clear(): void {
    this.messages.clear();
  }
}
