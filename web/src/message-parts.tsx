import { type ComponentChildren, Fragment } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ClientMessage, ThreadJson, UserJson } from '../../src/client/browser.js';
import { type MenuStep, MessageMenu, useLongPress } from './message-menu.js';
import { isMentioned, mentionRuns } from './mentions.js';
import type { ChatModel } from './model.js';
import { ReactionChips } from './reactions.js';

/**
 * The parts a message bubble has beside its body and files: the bubble
 * itself with its menu and reactions (MessageShell), its text with mentions highlighted, the "edited" mark, the
 * tombstone of a deleted message and the reaction chips.
 */

/** Elements whose own right-click menu (save the image, copy the link) is kept. */
const OWN_MENU = 'a, img, video, audio, input, textarea';

export function MessageShell({
  model, message, className, attributes, children,
}: { model: ChatModel; message: ClientMessage; className: string; attributes: Record<string, string | number | undefined>; children: ComponentChildren }) {
  const [menu, setMenu] = useState<MenuStep | undefined>();
  const [up, setUp] = useState(false);
  const item = useRef<HTMLLIElement>(null);
  const trigger = useRef<HTMLButtonElement>(null);
  const highlight = model.msg.highlighted;
  const highlighted = highlight?.messageId === message.id;
  // After the list's own scrolling (to the bottom, or kept in place): this message to the middle.
  useEffect(() => {
    if (!highlighted) return;
    const frame = requestAnimationFrame(() => item.current?.scrollIntoView({ block: 'center' }));
    return () => cancelAnimationFrame(frame);
  }, [highlight, highlighted]);
  const open = (): void => {
    // Low on the screen: the menu opens upwards, so it is not cut by the list's bottom edge.
    const box = item.current?.getBoundingClientRect();
    setUp(box !== undefined && box.top > window.innerHeight / 2);
    setMenu('actions');
  };
  const close = (): void => {
    setMenu(undefined);
    trigger.current?.focus({ preventScroll: true });
  };
  const longPress = useLongPress(open);
  const mentioned = isMentioned(message, model.session.user.id);
  return (
    <li
      ref={item}
      class={`${className}${highlighted ? ' highlighted' : ''}${mentioned ? ' mentions-me' : ''}${message.deleted ? ' deleted' : ''}${menu ? ' menu-open' : ''}`}
      data-id={message.id}
      {...attributes}
      {...longPress}
      onContextMenu={(event) => {
        const target = event.target as Element;
        // A right click on a picture or link, or over selected text, keeps the browser's menu (save, copy).
        if (target.closest(OWN_MENU) || String(window.getSelection() ?? '') !== '') return;
        event.preventDefault();
        open();
      }}
    >
      {children}
      <ReactionChips model={model} message={message} />
      <button
        ref={trigger}
        type="button"
        class="menu-trigger"
        aria-label="Message actions"
        aria-haspopup="menu"
        aria-expanded={menu !== undefined}
        onClick={() => (menu ? close() : open())}
      >
        ⋯
      </button>
      {menu && <MessageMenu model={model} message={message} step={menu} up={up} onStep={setMenu} onClose={close} />}
    </li>
  );
}

/**
 * The text of a message, `@mentions` of the users it mentions drawn
 * highlighted (the user's own more so); `plain` draws the runs between them
 * (links made clickable, say).
 */
export function MessageText({
  model, message, text, plain = (run) => run,
}: { model: ChatModel; message: ClientMessage; text: string; plain?: (text: string) => ComponentChildren }) {
  const mentioned = (message.mentions ?? []).flatMap((id): UserJson[] => {
    const user = model.users.get(id);
    return user ? [user] : [];
  });
  const me = model.session.user.id;
  return (
    <>
      {mentionRuns(text, mentioned).map((run, index) =>
        run.userId === undefined ? (
          <Fragment key={index}>{plain(run.text)}</Fragment>
        ) : (
          <span key={index} class={`mention${run.userId === me ? ' me' : ''}`} title={model.nameOf(run.userId)}>
            {run.text}
          </span>
        ),
      )}
    </>
  );
}

/** "edited", with when, in the bubble's corner. */
export function EditedMark({ message }: { message: ClientMessage }) {
  if (message.edited_at === undefined || message.deleted) return null;
  return (
    <span class="edited" title={`edited ${new Date(message.edited_at).toLocaleString()}`}>
      edited
    </span>
  );
}

export function DeletedBody() {
  return <span class="body deleted-body">This message was deleted</span>;
}

/** Where a jump's page ends and newer messages are not loaded yet. */
export function NewerMessages({ model, thread }: { model: ChatModel; thread: ThreadJson }) {
  return (
    <li class="older newer">
      <button type="button" class="link" onClick={() => void model.msg.loadNewer(thread.id)}>
        Show newer messages
      </button>
      <button type="button" class="link" onClick={() => void model.msg.toLatest(thread.id)}>
        Go to the newest
      </button>
    </li>
  );
}
