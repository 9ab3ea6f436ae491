import { useEffect, useRef } from 'preact/hooks';

/**
 * An image at full size over the page: Esc, the close button or a click
 * outside the image closes it, focus returns to what opened it. The download
 * link saves the file under its name.
 */
export function Viewer({ name, src, download, onClose, onError }: { name: string; src: string | undefined; download: string | undefined; onClose: () => void; onError?: () => void }) {
  const close = useRef<HTMLButtonElement>(null);
  const dialog = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    close.current?.focus();
    const onKey = (event: KeyboardEvent): void => {
      if (event.key === 'Escape') {
        event.preventDefault();
        onClose();
      }
      // Modal: Tab goes round the viewer's own controls, never to the chat behind it.
      if (event.key === 'Tab' && dialog.current) {
        const controls = [...dialog.current.querySelectorAll<HTMLElement>('a[href], button')];
        const first = controls[0];
        const last = controls[controls.length - 1];
        if (!first || !last) return;
        if (event.shiftKey && document.activeElement === first) {
          event.preventDefault();
          last.focus();
        } else if (!event.shiftKey && document.activeElement === last) {
          event.preventDefault();
          first.focus();
        }
      }
    };
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('keydown', onKey);
      opener?.focus();
    };
  }, []);
  return (
    <div
      ref={dialog}
      class="viewer"
      role="dialog"
      aria-modal="true"
      aria-label={name}
      data-testid="viewer"
      onClick={(event) => {
        if (event.target === event.currentTarget) onClose();
      }}
    >
      <div class="viewer-bar">
        <span class="viewer-name">{name}</span>
        {download && (
          <a href={download} download={name} class="viewer-download">
            Download
          </a>
        )}
        <button type="button" ref={close} onClick={onClose} aria-label="Close the image">
          ✕
        </button>
      </div>
      {src ? <img class="viewer-image" src={src} alt={name} onError={onError} onClick={onClose} /> : <p class="viewer-wait">Loading…</p>}
    </div>
  );
}
