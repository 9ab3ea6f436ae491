import { useEffect, useState } from 'preact/hooks';
import type { ClientMessage } from '../../src/client/browser.js';
import { type ShownAttachment, attachmentsOf, durationText, isVoiceMessage, sizeText } from './attachment-sdk.js';
import { FileBadge } from './composer.js';
import type { ChatModel } from './model.js';
import { Viewer } from './viewer.js';

/**
 * The attachments of a message: images inline (opening the viewer), audio and
 * video in the browser's players, other files as cards to download.
 * Plaintext ones load from signed links (LinkCache; a failed load asks for a
 * new link); end-to-end encrypted ones are fetched and decrypted by the SDK
 * into object URLs, revoked when they leave the screen.
 */

/** The largest box an inline image or video takes in a message (CSS pixels). */
const BOX = { width: 280, height: 280 };
/** Encrypted media up to this size are decrypted on sight; larger ones wait for a click (they live in memory). */
const AUTO_DECRYPT_BYTES = 25 * 1024 * 1024;

export function MessageAttachments({ model, message }: { model: ChatModel; message: ClientMessage }) {
  const attachments = attachmentsOf(message);
  if (attachments.length === 0) return null;
  return (
    <div class="attachments">
      {attachments.map((attachment) =>
        !attachment.encrypted ? (
          <PlainAttachment key={attachment.id} model={model} attachment={attachment} />
        ) : (
          <EncryptedAttachment key={attachment.id} model={model} attachment={attachment} />
        ),
      )}
    </div>
  );
}

type Kind = 'image' | 'audio' | 'video' | 'file';

function kindOf(attachment: ShownAttachment): Kind {
  const { mime } = attachment;
  // SVG is served as a download, never shown (it can carry script).
  if (mime.startsWith('image/') && !mime.includes('svg')) return 'image';
  if (mime.startsWith('audio/')) return 'audio';
  // The server names WebM by its container (video/webm) even when it holds sound alone: a voice message's is.
  if (mime.startsWith('video/')) return isVoiceMessage(attachment) && attachment.width === undefined ? 'audio' : 'video';
  return 'file';
}

/** The box an image or video takes, reserved before it loads (no jump when it arrives): its own shape, fitted in BOX. */
function boxOf(attachment: ShownAttachment): { width: number; height: number } {
  const width = attachment.width ?? attachment.thumbnail?.width;
  const height = attachment.height ?? attachment.thumbnail?.height;
  if (!width || !height) return { width: 240, height: 180 };
  const scale = Math.min(1, BOX.width / width, BOX.height / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

function PlainAttachment({ model, attachment }: { model: ChatModel; attachment: ShownAttachment }) {
  const kind = kindOf(attachment);
  if (kind === 'file') return <FileCard attachment={attachment} onDownload={async () => saveAs((await model.links.fresh(attachment.id)).url, attachment.name)} />;
  const links = model.links.get(attachment.id);
  const refresh = (): void => model.links.refresh(attachment.id);
  if (kind === 'image') return <PlainImage attachment={attachment} src={links ? (links.thumbnailUrl ?? links.url) : undefined} full={links?.url} onError={refresh} />;
  return <Player kind={kind} attachment={attachment} src={links?.url} poster={links?.thumbnailUrl ?? undefined} onError={refresh} />;
}

function PlainImage({ attachment, src, full, onError }: { attachment: ShownAttachment; src: string | undefined; full: string | undefined; onError?: () => void }) {
  const [viewing, setViewing] = useState(false);
  return (
    <>
      <InlineImage attachment={attachment} src={src} onOpen={() => setViewing(true)} onError={onError} />
      {viewing && <Viewer name={attachment.name} src={full} download={full} onError={onError} onClose={() => setViewing(false)} />}
    </>
  );
}

/** The image in the message, in a box of its shape kept before it loads; a button that opens the viewer. */
function InlineImage({ attachment, src, onOpen, onError }: { attachment: ShownAttachment; src: string | undefined; onOpen: () => void; onError?: (() => void) | undefined }) {
  const box = boxOf(attachment);
  return (
    <button type="button" class="att-image" style={{ width: `${box.width}px`, aspectRatio: `${box.width} / ${box.height}` }} aria-label={`Open ${attachment.name}`} onClick={onOpen}>
      {src && <img src={src} alt={attachment.name} width={box.width} height={box.height} onError={onError} />}
    </button>
  );
}

function Player({ kind, attachment, src, poster, onError }: { kind: 'audio' | 'video'; attachment: ShownAttachment; src: string | undefined; poster?: string | undefined; onError?: () => void }) {
  // A "video" with no picture (sound in a video container) is shown as the audio it is, once the browser has looked.
  const [soundOnly, setSoundOnly] = useState(false);
  const length = attachment.duration ? ` · ${durationText(attachment.duration)}` : '';
  const label = isVoiceMessage(attachment) ? `Voice message${length}` : `${attachment.name}${length}`;
  if (kind === 'audio' || soundOnly) {
    return (
      <div class="att-audio">
        <audio controls preload="metadata" src={src} aria-label={label} onError={onError} />
        <span class="att-caption">{label}</span>
      </div>
    );
  }
  const box = boxOf(attachment);
  return (
    <video
      class="att-video"
      controls
      preload="metadata"
      src={src}
      poster={poster}
      width={box.width}
      height={box.height}
      aria-label={label}
      onError={onError}
      onLoadedMetadata={(event) => {
        if (event.currentTarget.videoWidth === 0) setSoundOnly(true);
      }}
    />
  );
}

function FileCard({ attachment, onDownload }: { attachment: ShownAttachment; onDownload: () => Promise<void> }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  return (
    <div class="att-file" data-testid="file-card">
      <FileBadge mime={attachment.mime} name={attachment.name} />
      <span class="att-file-text">
        <span class="att-file-name">{attachment.name}</span>
        <span class="att-file-size">{sizeText(attachment.size)}</span>
        {error && (
          <span class="upload-error" role="alert">
            {error}
          </span>
        )}
      </span>
      <button
        type="button"
        class="link"
        disabled={busy}
        aria-label={`Download ${attachment.name}`}
        onClick={() => {
          setBusy(true);
          setError(undefined);
          onDownload()
            .catch((failure: unknown) => setError(`Download failed: ${(failure as Error).message}`))
            .finally(() => setBusy(false));
        }}
      >
        {busy ? 'Downloading…' : 'Download'}
      </button>
    </div>
  );
}

/**
 * The decrypted bytes of an encrypted attachment (or of the preview its
 * sender made) as an object URL while the element that shows it is mounted.
 */
function useDecrypted(model: ChatModel, attachment: ShownAttachment, wanted: boolean, preview = false): { url?: string; error?: string } {
  const [state, setState] = useState<{ url?: string; error?: string }>({});
  useEffect(() => {
    if (!wanted) return;
    let url: string | undefined;
    let gone = false;
    model.client
      .download(attachment.source, preview ? { thumbnail: true } : {})
      .then((bytes) => {
        if (gone) return;
        url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: preview ? 'image/jpeg' : attachment.mime }));
        setState({ url });
      })
      .catch((failure: unknown) => {
        if (!gone) setState({ error: `This file could not be opened: ${(failure as Error).message}` });
      });
    return () => {
      gone = true;
      if (url) URL.revokeObjectURL(url);
    };
  }, [attachment.id, wanted, preview]);
  return state;
}

/** An encrypted image: its sender's preview inline (or the image, without one), the image itself decrypted when the viewer opens. */
function EncryptedImage({ model, attachment }: { model: ChatModel; attachment: ShownAttachment }) {
  const [viewing, setViewing] = useState(false);
  const hasPreview = attachment.thumbnail !== undefined;
  const preview = useDecrypted(model, attachment, hasPreview, true);
  const full = useDecrypted(model, attachment, !hasPreview || viewing);
  const error = preview.error ?? full.error;
  if (error) return <p class="att-error">{error}</p>;
  return (
    <>
      <InlineImage attachment={attachment} src={hasPreview ? preview.url : full.url} onOpen={() => setViewing(true)} />
      {viewing && <Viewer name={attachment.name} src={full.url} download={full.url} onClose={() => setViewing(false)} />}
    </>
  );
}

function EncryptedAttachment({ model, attachment }: { model: ChatModel; attachment: ShownAttachment }) {
  const kind = kindOf(attachment);
  const media = kind !== 'file' && (attachment.size ?? 0) <= AUTO_DECRYPT_BYTES;
  const { url, error } = useDecrypted(model, attachment, media && kind !== 'image');
  if (media && kind === 'image') return <EncryptedImage model={model} attachment={attachment} />;
  if (!media) {
    return (
      <FileCard
        attachment={attachment}
        onDownload={async () => {
          const bytes = await model.client.download(attachment.source);
          const local = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: attachment.mime }));
          saveAs(local, attachment.name);
          // The browser has started saving it by then.
          setTimeout(() => URL.revokeObjectURL(local), 60_000);
        }}
      />
    );
  }
  if (error) return <p class="att-error">{error}</p>;
  return <Player kind={kind as 'audio' | 'video'} attachment={attachment} src={url} />;
}

/** Saves a URL's file under `name` (same origin or an object URL: the name is kept). */
function saveAs(url: string, name: string): void {
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
}
