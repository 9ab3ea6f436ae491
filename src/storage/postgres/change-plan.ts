import { type AppendOutcome, type ChangeInput, MAX_REACTIONS_PER_USER, type MessageKind, type SendContent, type SendInput } from '../ports/messaging.js';
import type { Decision, SenderView } from './append-plan.js';

/**
 * The rules of a change (edit, delete for everyone, reaction) and of a send's
 * reply and mentions, pure, on the rows the unit read under its locks
 * (MSG-SPEC §1; the order of refusals is the port's, AppendRefusal).
 */

/** A message a change or a reply names, as the unit read it (and, for a target, as the batch leaves it). */
export interface TargetState {
  readonly id: number;
  readonly threadId: number;
  readonly seq: number;
  readonly senderUserId: number;
  readonly kind: MessageKind;
  /** A change row (target_id set): never a target nor a reply's. */
  readonly isChange: boolean;
  readonly createdAt: number;
  readonly bodyJson: string;
  readonly mentionsJson: string | null;
  readonly attachmentsJson: string | null;
  readonly editedAt: number | null;
  readonly deletedAt: number | null;
  readonly reactionsJson: string | null;
}

type Refusal = AppendOutcome & { kind: 'refused' };

/** One emoji's reactions, as messages.reactions holds them. */
interface Reaction {
  readonly emoji: string;
  readonly user_ids: number[];
}

/** Whether the sender may see the message: one of this thread, after they joined (a current member sees up to the thread's last seq). */
function visible(message: TargetState | undefined, threadId: number, sender: SenderView): message is TargetState {
  return message !== undefined && message.threadId === threadId && message.seq > sender.joinedSeq;
}

/** A send's reply_to: a content message of this thread the sender may see, not deleted for everyone. */
export function replyRefusal(input: SendInput, sender: SenderView, target: TargetState | undefined): Refusal | undefined {
  if (input.replyTo === undefined) return undefined;
  if (!visible(target, input.threadId, sender) || target.isChange || target.kind === 'system') return { kind: 'refused', reason: 'reply_invalid' };
  if (target.deletedAt !== null) return { kind: 'refused', reason: 'message_deleted' };
  return undefined;
}

/** Mentions name current members only (`members`: those of the batch's mentioned users who are); the first other one is refused. */
export function mentionRefusal(mentions: readonly number[] | undefined, members: ReadonlySet<number>): Refusal | undefined {
  const stranger = mentions?.find((userId) => !members.has(userId));
  return stranger === undefined ? undefined : { kind: 'refused', reason: 'mention_not_member', userId: stranger };
}

/**
 * A change's decision: the row it stores and its target's new state, a
 * refusal, or `unchanged` (a delete of a deleted message, a reaction already
 * so). `content` checks an edit's body as a send's.
 */
export function decideChange(
  input: ChangeInput,
  sender: SenderView,
  target: TargetState | undefined,
  members: ReadonlySet<number>,
  content: (input: ChangeInput, content: SendContent) => Refusal | undefined,
): Decision {
  const { change } = input;
  if (!visible(target, input.threadId, sender)) return { kind: 'refused', reason: 'no_message' };
  if (target.isChange || target.kind === 'system') return { kind: 'refused', reason: 'not_changeable' };
  const targetId = target.id;
  switch (change.type) {
    case 'delete': {
      if (target.deletedAt !== null) return { kind: 'unchanged' };
      const moderator = sender.threadKind === 'group' && (sender.role === 'owner' || sender.role === 'admin');
      if (target.senderUserId !== input.senderUserId && !moderator) return { kind: 'refused', reason: 'not_author' };
      return {
        row: { kind: 'text', bodyJson: 'null', attachments: undefined, targetId, change: { type: 'delete' } },
        target: {
          state: { ...target, bodyJson: 'null', attachmentsJson: null, mentionsJson: null, reactionsJson: null, deletedAt: input.now },
          deleted: true,
        },
      };
    }
    case 'edit': {
      if (target.deletedAt !== null) return { kind: 'refused', reason: 'message_deleted' };
      if (target.senderUserId !== input.senderUserId) return { kind: 'refused', reason: 'not_author' };
      if (change.editWindowMs > 0 && input.now - target.createdAt > change.editWindowMs) {
        return { kind: 'refused', reason: 'edit_window_passed', windowMs: change.editWindowMs };
      }
      if (change.content.kind !== target.kind) return { kind: 'refused', reason: 'kind_mismatch' };
      const refusal = content(input, change.content) ?? mentionRefusal(change.mentions, members);
      if (refusal) return refusal;
      const mentionsJson = change.mentions !== undefined && change.mentions.length > 0 ? JSON.stringify(change.mentions) : undefined;
      return {
        row: { kind: change.content.kind, bodyJson: change.bodyJson, attachments: undefined, mentionsJson, targetId, change: { type: 'edit' } },
        target: { state: { ...target, bodyJson: change.bodyJson, mentionsJson: mentionsJson ?? null, editedAt: input.now }, deleted: false },
      };
    }
    case 'reaction': {
      if (target.deletedAt !== null) return { kind: 'refused', reason: 'message_deleted' };
      const toggled = toggleReaction(target.reactionsJson, input.senderUserId, change.emoji, change.on);
      if (toggled === 'unchanged') return { kind: 'unchanged' };
      if (toggled === 'too_many') return { kind: 'refused', reason: 'too_many_reactions' };
      return {
        row: { kind: 'text', bodyJson: 'null', attachments: undefined, targetId, change: { type: 'reaction', emoji: change.emoji, on: change.on } },
        target: { state: { ...target, reactionsJson: toggled }, deleted: false },
      };
    }
  }
}

/**
 * The reactions after the user's toggle, as compact JSON in first-reacted
 * order (a new emoji last, a new user last in its list; an emoji nobody has
 * any more goes; none left: null), or why nothing changes.
 */
export function toggleReaction(json: string | null, userId: number, emoji: string, on: boolean): string | null | 'unchanged' | 'too_many' {
  const reactions = json === null ? [] : (JSON.parse(json) as Reaction[]);
  const entry = reactions.find((reaction) => reaction.emoji === emoji);
  if ((entry?.user_ids.includes(userId) ?? false) === on) return 'unchanged';
  let next: Reaction[];
  if (on) {
    if (reactions.filter((reaction) => reaction.user_ids.includes(userId)).length >= MAX_REACTIONS_PER_USER) return 'too_many';
    next = entry
      ? reactions.map((reaction) => (reaction === entry ? { emoji, user_ids: [...reaction.user_ids, userId] } : reaction))
      : [...reactions, { emoji, user_ids: [userId] }];
  } else {
    next = reactions
      .map((reaction) => (reaction === entry ? { emoji, user_ids: reaction.user_ids.filter((id) => id !== userId) } : reaction))
      .filter((reaction) => reaction.user_ids.length > 0);
  }
  return next.length === 0 ? null : JSON.stringify(next);
}
