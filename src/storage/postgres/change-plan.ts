import { type AppendOutcome, type ChangeInput, MAX_REACTIONS_PER_USER, type MessageKind, type SendContent, type SendInput } from '../ports/messaging.js';
import { toggleReaction } from '../ports/reactions.js';
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
  /** A current member joined at or after it and cannot see it (an edit would show it to them). */
  readonly unseenByMembers: boolean;
}

type Refusal = AppendOutcome & { kind: 'refused' };

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
      const moderator = sender.threadKind === 'group' && (sender.role === 'owner' || sender.role === 'admin');
      if (target.senderUserId !== input.senderUserId && !moderator) return { kind: 'refused', reason: 'not_author' };
      if (target.deletedAt !== null) return { kind: 'unchanged' };
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
      if (target.unseenByMembers) return { kind: 'refused', reason: 'unseen_by_members' };
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
      // Under the target's row lock (or after an earlier toggle of the batch): concurrent toggles aggregate.
      const toggled = toggleReaction(target.reactionsJson, input.senderUserId, change.emoji, change.on, MAX_REACTIONS_PER_USER);
      if (toggled.kind === 'unchanged') return { kind: 'unchanged' };
      if (toggled.kind === 'too_many') return { kind: 'refused', reason: 'too_many_reactions' };
      return {
        row: { kind: 'text', bodyJson: 'null', attachments: undefined, targetId, change: { type: 'reaction', emoji: change.emoji, on: change.on } },
        target: { state: { ...target, reactionsJson: toggled.json }, deleted: false },
      };
    }
  }
}
