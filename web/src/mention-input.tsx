import type { RefObject } from 'preact';
import { useState } from 'preact/hooks';
import type { ThreadJson, UserJson } from '../../src/client/browser.js';
import { type MentionQuery, insertMention, mentionCandidates, mentionQuery } from './mentions.js';
import type { ChatModel } from './model.js';

/**
 * The composer's `@` autocomplete: typing `@` and the start of a name lists
 * the thread's members that match; ↑/↓ choose, Enter or Tab takes one
 * (`@username ` goes in the text), Escape closes the list, a click takes
 * one too. What the text mentions is parsed when it is sent.
 */
export function useMentionAutocomplete(
  model: ChatModel,
  thread: ThreadJson,
  input: RefObject<HTMLTextAreaElement>,
  text: string,
  setText: (text: string) => void,
): { list: preact.JSX.Element | null; onKeyDown: (event: KeyboardEvent) => boolean; onCaret: () => void } {
  const [caret, setCaret] = useState(0);
  const [active, setActive] = useState(0);
  /** The `@` whose list was closed with Escape: not offered again until another one is typed. */
  const [dismissed, setDismissed] = useState<number>();
  const query = mentionQuery(text, Math.min(caret, text.length));
  const open = query !== undefined && query.start !== dismissed;
  const candidates = open ? mentionCandidates(query.query, model.msg.membersOf(thread.id), model.session.user.id) : [];
  const current = Math.min(active, Math.max(0, candidates.length - 1));
  const take = (mention: MentionQuery, user: UserJson): void => {
    const element = input.current;
    const next = insertMention(text, mention, caret, user.username);
    // The element's text and caret are set now, not after the next render: a key pressed
    // before that render would land before the caret set later ("@ida leasep" for "please").
    if (element) {
      element.value = next.text;
      element.focus();
      element.setSelectionRange(next.caret, next.caret);
    }
    setText(next.text);
    setCaret(next.caret);
    setActive(0);
  };
  const onCaret = (): void => {
    const element = input.current;
    if (!element) return;
    setCaret(element.selectionStart ?? element.value.length);
    const next = mentionQuery(element.value, element.selectionStart ?? element.value.length);
    if (next?.start !== query?.start) setActive(0);
    if (dismissed !== undefined && next?.start !== dismissed) setDismissed(undefined);
  };
  const onKeyDown = (event: KeyboardEvent): boolean => {
    if (!query || candidates.length === 0) return false;
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      setActive((current + (event.key === 'ArrowDown' ? 1 : candidates.length - 1)) % candidates.length);
      return true;
    }
    if ((event.key === 'Enter' && !event.shiftKey) || event.key === 'Tab') {
      const user = candidates[current];
      if (!user) return false;
      event.preventDefault();
      take(query, user);
      return true;
    }
    if (event.key === 'Escape') {
      event.preventDefault();
      setDismissed(query.start);
      return true;
    }
    return false;
  };
  const list =
    query && candidates.length > 0 ? (
      <ul class="mention-list" role="listbox" aria-label="People to mention" id={`mentions-${thread.id}`}>
        {candidates.map((user, index) => (
          <li
            key={user.id}
            role="option"
            aria-selected={index === current}
            class={index === current ? 'active' : ''}
            // mousedown, not click: the text box keeps the focus (and its caret).
            onMouseDown={(event) => {
              event.preventDefault();
              take(query, user);
            }}
          >
            <strong>{user.display_name}</strong> <small>@{user.username}</small>
          </li>
        ))}
      </ul>
    ) : null;
  return { list, onKeyDown, onCaret };
}
