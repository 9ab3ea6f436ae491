import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';
import type { ClientMessage } from '../../src/client/browser.js';
import { plainText } from './message-changes.js';
import type { ChatModel } from './model.js';
import { ReactionPicker } from './reactions.js';

/**
 * The menu of a message: opened with its ⋯ button (hover, or Tab to it),
 * a right click, or a long press on a touch screen. It offers a reaction,
 * Reply, Edit (own messages), Copy text, Message info (own messages in
 * groups: who has read it, message-info.tsx) and Delete…, which asks which:
 * for everyone (the author, or a group's owner or admin) or for me.
 * Arrow keys move between its items, Escape closes it and gives the focus
 * back to the ⋯ button.
 */

export type MenuStep = 'actions' | 'delete';

/** How long a touch must stay put to open the menu. */
const LONG_PRESS_MS = 500;
/** How far (px) a touch may wander and still be a long press rather than a scroll. */
const LONG_PRESS_SLOP = 10;

export function MessageMenu({
  model, message, step, up, onStep, onClose,
}: { model: ChatModel; message: ClientMessage; step: MenuStep; up: boolean; onStep: (step: MenuStep) => void; onClose: () => void }) {
  const ref = useRef<HTMLDivElement>(null);
  // The first item takes the focus, so the keyboard goes on from the ⋯ button into the menu: in the same
  // update that draws the items (a layout effect), since a key pressed before a later frame would reach no
  // menu (after "Delete…" the focused button is gone, and Escape then did not close the menu).
  useLayoutEffect(() => {
    ref.current?.querySelector<HTMLElement>('[role=menuitem]')?.focus();
  }, [step]);
  // A press anywhere else closes it.
  useEffect(() => {
    const outside = (event: PointerEvent): void => {
      const menu = ref.current;
      if (menu && !menu.contains(event.target as Node) && !(event.target as Element | null)?.closest?.('.menu-trigger[aria-expanded=true]')) onClose();
    };
    document.addEventListener('pointerdown', outside, true);
    return () => document.removeEventListener('pointerdown', outside, true);
  }, [onClose]);
  const keys = (event: KeyboardEvent): void => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      onClose();
      return;
    }
    if (event.key === 'Tab') return onClose();
    const step = event.key === 'ArrowDown' || event.key === 'ArrowRight' ? 1 : event.key === 'ArrowUp' || event.key === 'ArrowLeft' ? -1 : 0;
    if (step === 0) return;
    event.preventDefault();
    const items = [...(ref.current?.querySelectorAll<HTMLElement>('[role=menuitem]') ?? [])];
    const at = items.indexOf(document.activeElement as HTMLElement);
    items[(at + step + items.length) % items.length]?.focus();
  };
  const act = (action: () => void | Promise<void>) => () => {
    onClose();
    void action();
  };
  const text = plainText(message);
  const deleted = message.deleted === true;
  return (
    <div ref={ref} class={`message-menu${up ? ' up' : ''}`} role="menu" aria-label="Message actions" onKeyDown={keys}>
      {step === 'actions' ? (
        <>
          {!deleted && <ReactionPicker model={model} message={message} onDone={onClose} />}
          {!deleted && (
            <button type="button" role="menuitem" onClick={act(() => model.msg.reply(message))}>
              Reply
            </button>
          )}
          {model.msg.canEdit(message) && (
            <button type="button" role="menuitem" onClick={act(() => model.msg.edit(message))}>
              Edit
            </button>
          )}
          {!deleted && text && (
            <button type="button" role="menuitem" onClick={act(() => navigator.clipboard?.writeText(text).catch(() => {}))}>
              Copy text
            </button>
          )}
          {model.msg.canShowInfo(message) && (
            <button type="button" role="menuitem" onClick={act(() => model.msg.showInfo(message))}>
              Message info
            </button>
          )}
          <button type="button" role="menuitem" class="danger" onClick={() => onStep('delete')}>
            Delete…
          </button>
        </>
      ) : (
        <>
          {model.msg.canDeleteForEveryone(message) && (
            <button type="button" role="menuitem" class="danger" onClick={act(() => model.msg.remove(message, true))}>
              Delete for everyone
            </button>
          )}
          <button type="button" role="menuitem" class="danger" onClick={act(() => model.msg.remove(message, false))}>
            Delete for me
          </button>
          <button type="button" role="menuitem" onClick={() => onStep('actions')}>
            Cancel
          </button>
        </>
      )}
    </div>
  );
}

/**
 * A long press with a finger or pen (not the mouse: it has the right click)
 * runs `onPress`; moving the finger, as to scroll, cancels it.
 */
export function useLongPress(onPress: () => void): {
  onPointerDown: (event: PointerEvent) => void;
  onPointerMove: (event: PointerEvent) => void;
  onPointerUp: () => void;
  onPointerCancel: () => void;
} {
  const timer = useRef<ReturnType<typeof setTimeout>>();
  const start = useRef<{ x: number; y: number }>();
  const stop = (): void => {
    clearTimeout(timer.current);
    timer.current = undefined;
  };
  useEffect(() => stop, []);
  return {
    onPointerDown: (event) => {
      if (event.pointerType === 'mouse') return;
      start.current = { x: event.clientX, y: event.clientY };
      stop();
      timer.current = setTimeout(onPress, LONG_PRESS_MS);
    },
    onPointerMove: (event) => {
      const from = start.current;
      if (from && timer.current && Math.hypot(event.clientX - from.x, event.clientY - from.y) > LONG_PRESS_SLOP) stop();
    },
    onPointerUp: stop,
    onPointerCancel: stop,
  };
}
