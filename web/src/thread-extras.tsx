import { type RefObject } from 'preact';
import { useLayoutEffect } from 'preact/hooks';
import type { ChatModel } from './model.js';

/** Where the unread messages of a chat start, as it was opened. */
export function UnreadDivider() {
  return (
    <li class="unread-divider" data-testid="unread-divider" role="separator" aria-label="New messages">
      <span>New messages</span>
    </li>
  );
}

/**
 * Scrolls the divider near the top of the list when the chat opens with
 * unread messages (and again while older pages load to reach the first one),
 * and tells the list's own scrolling that the reader is no longer at the bottom.
 */
export function useScrollToDivider(
  list: RefObject<HTMLOListElement>,
  threadId: number,
  dividerSeq: number | undefined,
  place: { atBottom: { current: boolean }; fromBottom: { current: number } },
): void {
  useLayoutEffect(() => {
    const element = list.current;
    const divider = element?.querySelector<HTMLElement>('.unread-divider');
    if (!element || !divider || dividerSeq === undefined) return;
    // A little of what was read stays in view above it.
    element.scrollTop = Math.max(0, divider.offsetTop - element.offsetTop - 48);
    place.fromBottom.current = element.scrollHeight - element.scrollTop;
    place.atBottom.current = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
  }, [threadId, dividerSeq]);
}

/** The offer to turn notifications on, once there is something to be notified of; never again after "Not now". */
export function NotificationBanner({ model }: { model: ChatModel }) {
  const { attention } = model;
  if (!attention.offerBanner()) return null;
  return (
    <div class="banner notify-offer" role="region" aria-label="Notifications">
      <span>Get a notification when a message arrives while chatd is in the background.</span>
      <button type="button" onClick={() => void attention.askPermission()}>
        Turn on notifications
      </button>
      <button type="button" class="link" onClick={() => attention.dismissBanner()}>
        Not now
      </button>
    </div>
  );
}
