import { useRef } from 'preact/hooks';
import { useModalKeys } from './modal.js';

/**
 * An image at full size over the page: Esc, the close button or a click
 * outside the image closes it, focus returns to what opened it. The download
 * link saves the file under its name.
 */
export function Viewer({ name, src, download, onClose, onError }: { name: string; src: string | undefined; download: string | undefined; onClose: () => void; onError?: () => void }) {
  const close = useRef<HTMLButtonElement>(null);
  const dialog = useRef<HTMLDivElement>(null);
  useModalKeys(dialog, close, onClose);
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
