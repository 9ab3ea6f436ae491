import type { RefObject } from 'preact';
import { useLayoutEffect, useRef } from 'preact/hooks';

/**
 * The keyboard of a modal dialog (the image viewer, Message info): it takes
 * the focus when it opens, Escape closes it, Tab goes round its own controls
 * and never to the chat behind it, and the focus goes back to what opened it
 * when it closes.
 *
 * A layout effect, run in the same update that draws the dialog: a key
 * pressed at once (a fast typist, a busy machine) reaches the dialog. As a
 * plain effect it ran after the next frame, and such a key went to the page
 * behind. The handler listens in the capture phase and stops Escape there, so
 * that Escape closes this dialog and not what is below it (a message menu's
 * own handler, the chat's). Closing gives the focus back without scrolling:
 * the list may have moved while the dialog was open.
 */
export function useModalKeys(dialog: RefObject<HTMLElement>, first: RefObject<HTMLElement>, onClose: () => void): void {
  // Installed once; the newest onClose is the one called.
  const closing = useRef(onClose);
  closing.current = onClose;
  useLayoutEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    first.current?.focus();
    const onKey = (event: KeyboardEvent): void => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        closing.current();
        return;
      }
      if (event.key !== 'Tab' || !dialog.current) return;
      const controls = [...dialog.current.querySelectorAll<HTMLElement>('a[href], button, input, textarea, select')];
      const at = controls.indexOf(document.activeElement as HTMLElement);
      const next = at + (event.shiftKey ? -1 : 1);
      // Within the dialog the browser moves the focus itself; past either end (or from outside) it wraps round.
      if (at !== -1 && next >= 0 && next < controls.length) return;
      event.preventDefault();
      (event.shiftKey ? controls[controls.length - 1] : controls[0])?.focus();
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      opener?.focus({ preventScroll: true });
    };
  }, []);
}
