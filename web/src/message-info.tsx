import { useEffect, useRef, useState } from 'preact/hooks';
import type { ClientMessage, MessageReceipts } from '../../src/client/browser.js';
import { type HeldReceipts, holdReceipt, receiptsAfter, receiptsWithHeld } from './message-receipts.js';
import type { ChatModel } from './model.js';
import { useModalKeys } from './modal.js';

/**
 * "Message info" of one of the user's own messages in a group (from its
 * menu): who has read it, whose devices have it, who is still waiting, by
 * display name, as the server counts them from the members' cursors
 * (`client.receipts`). Asked once, when it opens; after that each member's
 * receipt that reaches or passes the message moves them forward in the lists
 * here (those about one's own messages all reach this device), so a large
 * group's receipts cost no further requests in the SDK's rate-limited queue.
 * Escape or Close closes it and gives the focus back to what opened it (the
 * message's ⋯ button).
 */
export function MessageInfo({ model, message, onClose }: { model: ChatModel; message: ClientMessage; onClose: () => void }) {
  const [receipts, setReceipts] = useState<MessageReceipts>();
  const [error, setError] = useState<string>();
  const close = useRef<HTMLButtonElement>(null);
  const dialog = useRef<HTMLDivElement>(null);
  useEffect(() => {
    let shown = true;
    /** Receipts that arrive before the answer, applied to it when it comes; undefined once it has. */
    let held: HeldReceipts | undefined = new Map();
    const off = model.client.on('receipt', (receipt) => {
      if (!shown || receipt.thread_id !== message.thread_id || receipt.seq < message.seq) return;
      if (held) holdReceipt(held, receipt);
      else setReceipts((current) => current && receiptsAfter(current, receipt, message.seq));
    });
    model.client.receipts(message.thread_id, message.seq).then(
      (answer) => {
        if (!shown || !held) return;
        setReceipts(receiptsWithHeld(answer, held, message.seq));
        held = undefined;
      },
      (failure: unknown) => {
        if (!shown) return;
        held = undefined;
        setError(failure instanceof Error ? failure.message : String(failure));
      },
    );
    return () => {
      shown = false;
      off();
    };
  }, [message.thread_id, message.seq]);
  useModalKeys(dialog, close, onClose);
  return (
    <div
      class="message-info-backdrop"
      onClick={(event) => {
        if (event.target === event.currentTarget) onClose();
      }}
    >
      <div class="message-info" ref={dialog} role="dialog" aria-modal="true" aria-label="Message info" data-testid="message-info">
        <header>
          <strong>Message info</strong>
          <button type="button" class="link" ref={close} onClick={onClose}>
            Close
          </button>
        </header>
        {error && <p class="error" role="alert">{error}</p>}
        {!receipts && !error && <p>Loading…</p>}
        {receipts && (
          <>
            <People model={model} title="Read by" ids={receipts.read} />
            <People model={model} title="Delivered to" ids={receipts.delivered} />
            <People model={model} title="Waiting" ids={receipts.pending} />
          </>
        )}
      </div>
    </div>
  );
}

function People({ model, title, ids }: { model: ChatModel; title: string; ids: readonly number[] }) {
  return (
    <section aria-label={title}>
      <h3>{title}</h3>
      {ids.length === 0 ? (
        <p class="hint">Nobody</p>
      ) : (
        <ul>
          {ids.map((id) => (
            <li key={id}>{model.nameOf(id)}</li>
          ))}
        </ul>
      )}
    </section>
  );
}
