import type { ClientMessage } from '../../src/client/browser.js';
import { reacted } from './message-changes.js';
import type { ChatModel } from './model.js';

/**
 * Reactions: the chips under a bubble (each emoji with how many reacted;
 * the user's own are pressed, a click switches theirs on or off) and the
 * small picker the message menu opens. Counts come aggregated from the
 * server and change live (`message_changed`).
 */

/** What the picker offers: the reactions people use most, in every chat app. */
export const COMMON_EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🙏'] as const;

export function ReactionChips({ model, message }: { model: ChatModel; message: ClientMessage }) {
  const reactions = message.reactions ?? [];
  if (reactions.length === 0 || message.deleted) return null;
  const me = model.session.user.id;
  return (
    <div class="reactions" data-testid="reactions">
      {reactions.map((reaction) => {
        const mine = reaction.user_ids.includes(me);
        const names = reaction.user_ids.map((id) => (id === me ? 'you' : model.nameOf(id))).join(', ');
        return (
          <button
            key={reaction.emoji}
            type="button"
            class={`chip${mine ? ' mine' : ''}`}
            aria-pressed={mine}
            aria-label={`${reaction.emoji} ${reaction.user_ids.length}: ${names}`}
            title={names}
            data-emoji={reaction.emoji}
            onClick={() => void model.msg.toggleReaction(message, reaction.emoji)}
          >
            <span class="chip-emoji">{reaction.emoji}</span> <span class="chip-count">{reaction.user_ids.length}</span>
          </button>
        );
      })}
    </div>
  );
}

/** A row of common emoji: picking one toggles the user's reaction. */
export function ReactionPicker({ model, message, onDone }: { model: ChatModel; message: ClientMessage; onDone: () => void }) {
  const me = model.session.user.id;
  return (
    <div class="reaction-picker" role="group" aria-label="React">
      {COMMON_EMOJI.map((emoji) => (
        <button
          key={emoji}
          type="button"
          role="menuitem"
          class={reacted(message, emoji, me) ? 'mine' : ''}
          aria-label={`React with ${emoji}`}
          aria-pressed={reacted(message, emoji, me)}
          onClick={() => {
            onDone();
            void model.msg.toggleReaction(message, emoji);
          }}
        >
          {emoji}
        </button>
      ))}
    </div>
  );
}
