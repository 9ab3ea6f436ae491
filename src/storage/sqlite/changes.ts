import { type AppendOutcome, type ChangeInput, MAX_REACTIONS_PER_USER, type MessageChange, type MessageKind } from '../ports/messaging.js';
import { toggleReaction } from '../ports/reactions.js';
import type { MessageRow } from '../repositories/messages.js';
import type { ChangerState } from '../repositories/threads.js';
import type { Store } from '../store.js';
import { contentRefusal, mentionRefusal, mentionsJson } from './content.js';

/**
 * A change to a stored message (edit, delete for everyone, reaction), decided
 * and applied inside the append unit: `planChange` reads the target and the
 * rules, the caller appends the change row, then `applyChange` brings the
 * target to its latest state — only when the row was stored (a resend
 * changes nothing twice).
 */

type Refusal = AppendOutcome & { kind: 'refused' };

/** The change row to append and what it does to its target. */
export interface ChangePlan {
  readonly target: MessageRow;
  readonly change: MessageChange;
  /** The change row's kind and body: an edit's new content, else a text row with body `null`. */
  readonly kind: MessageKind;
  readonly bodyJson: string;
  readonly mentionsJson: string | null;
  /** A reaction: the target's reactions after it. */
  readonly reactionsJson?: string | null;
}

/** The plan, or why nothing is stored (refused, or `unchanged`). The sender is a current member (`state`). */
export function planChange(store: Pick<Store, 'messages' | 'keys' | 'threads'>, input: ChangeInput, state: ChangerState): ChangePlan | Refusal | { kind: 'unchanged' } {
  const { change } = input;
  const target = store.messages.findById(change.targetId);
  // Another thread's message, or one from before the sender joined, is answered like one that does not exist.
  if (!target || target.thread_id !== input.threadId || target.seq <= state.joined_seq) return { kind: 'refused', reason: 'no_message' };
  if (target.kind === 'system' || target.change !== null) return { kind: 'refused', reason: 'not_changeable' };
  const deleted = target.deleted_at !== null;
  const author = target.sender_user_id === input.senderUserId;
  switch (change.type) {
    case 'edit': {
      if (deleted) return { kind: 'refused', reason: 'message_deleted' };
      if (!author) return { kind: 'refused', reason: 'not_author' };
      if (change.editWindowMs > 0 && input.now - target.created_at > change.editWindowMs) {
        return { kind: 'refused', reason: 'edit_window_passed', windowMs: change.editWindowMs };
      }
      if (change.content.kind !== target.kind) return { kind: 'refused', reason: 'kind_mismatch' };
      if (store.threads.joinedSince(input.threadId, target.seq)) return { kind: 'refused', reason: 'unseen_by_members' };
      const refusal = contentRefusal(store, input, change.content, state.e2e_required === 1) ?? mentionRefusal(store, input.threadId, change.mentions);
      if (refusal) return refusal;
      return { target, change: { type: 'edit' }, kind: change.content.kind, bodyJson: change.bodyJson, mentionsJson: mentionsJson(change.mentions) };
    }
    case 'delete': {
      const moderator = state.kind === 'group' && (state.role === 'owner' || state.role === 'admin');
      if (!author && !moderator) return { kind: 'refused', reason: 'not_author' };
      if (deleted) return { kind: 'unchanged' };
      return { target, change: { type: 'delete' }, kind: 'text', bodyJson: 'null', mentionsJson: null };
    }
    case 'reaction': {
      if (deleted) return { kind: 'refused', reason: 'message_deleted' };
      const toggled = toggleReaction(target.reactions, input.senderUserId, change.emoji, change.on, MAX_REACTIONS_PER_USER);
      if (toggled.kind === 'unchanged') return { kind: 'unchanged' };
      if (toggled.kind === 'too_many') return { kind: 'refused', reason: 'too_many_reactions' };
      return {
        target,
        change: { type: 'reaction', emoji: change.emoji, on: change.on },
        kind: 'text',
        bodyJson: 'null',
        mentionsJson: null,
        reactionsJson: toggled.json,
      };
    }
  }
}

/** The target's latest state, in the unit that stored the change row. */
export function applyChange(store: Pick<Store, 'messages'>, plan: ChangePlan, now: number): void {
  const { target } = plan;
  switch (plan.change.type) {
    case 'edit':
      store.messages.edit(target.id, plan.bodyJson, plan.mentionsJson, now);
      return;
    case 'delete':
      store.messages.erase(target, now);
      return;
    case 'reaction':
      store.messages.setReactions(target.id, plan.reactionsJson ?? null);
      return;
  }
}
