import type { ClientMessage, ThreadJson } from '../../src/client/browser.js';
import { attachmentSummary, attachmentsOf } from './attachment-sdk.js';
import { e2eProblem } from './e2e-views.js';
import { plainText } from './message-changes.js';
import type { ChatModel } from './model.js';

/**
 * Replies: the quote inside an answer (the quoted message's sender and the
 * start of its text; a click shows it in the thread, loaded in context when
 * it is older than what is on screen), and the bar above the composer
 * while answering or editing.
 */

/** A short line for a quoted message: its text, its files, or why there is nothing to show. */
export function excerpt(message: ClientMessage): string {
  if (message.deleted) return 'Deleted message';
  if (message.kind === 'e2e' && message.e2e?.status !== 'ok') return e2eProblem(message.e2e?.status);
  const text = plainText(message)?.trim();
  const line = text || attachmentSummary(attachmentsOf(message)) || 'Message';
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
}

export function ReplyQuote({ model, message }: { model: ChatModel; message: ClientMessage }) {
  if (message.reply_to === undefined || message.deleted) return null;
  const quoted = model.msg.quote(message.thread_id, message.reply_to);
  const target = message.reply_to;
  const known = typeof quoted === 'object' ? quoted : undefined;
  const who = known ? (known.sender_id === model.session.user.id ? 'You' : model.nameOf(known.sender_id)) : '';
  const text = known ? excerpt(known) : quoted === 'missing' ? 'Message not available' : '…';
  return (
    <button
      type="button"
      class="quote"
      data-testid="quote"
      aria-label={`Go to the message answered${who ? `, from ${who}` : ''}: ${text}`}
      onClick={() => void model.msg.jumpTo(message.thread_id, target)}
    >
      {who && <span class="quote-sender">{who}</span>}
      <span class="quote-text">{text}</span>
    </button>
  );
}

/** Above the composer: the message being answered or edited, with ✕ (or Escape) to stop. */
export function ComposerBanner({ model, thread }: { model: ChatModel; thread: ThreadJson }) {
  const mode = model.msg.modes.get(thread.id);
  if (!mode) return null;
  const who = mode.message.sender_id === model.session.user.id ? 'yourself' : model.nameOf(mode.message.sender_id);
  return (
    <div class={`composer-banner ${mode.kind}`} data-testid="composer-banner">
      <span class="composer-banner-text">
        <strong>{mode.kind === 'edit' ? 'Editing' : `Replying to ${who}`}</strong> <span class="quote-text">{excerpt(mode.message)}</span>
      </span>
      <button type="button" class="icon" aria-label={mode.kind === 'edit' ? 'Cancel editing' : 'Cancel the reply'} title="Esc" onClick={() => model.msg.cancel(thread.id)}>
        ✕
      </button>
    </div>
  );
}
