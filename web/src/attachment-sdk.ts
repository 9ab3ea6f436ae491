import type { ChatClient, ClientMessage } from '../../src/client/browser.js';
import type { AttachmentJson } from '../../src/protocol/frames.js';

/**
 * What the web client uses of the SDK's attachments API (docs/attachments.md,
 * "SDK"), in one place: the screens never speak tus or build a link
 * themselves. Uploads resume inside the SDK; encryption of files in an
 * end-to-end thread happens there too (`encrypt`).
 */

/** What `upload` gives back: the server's description (plaintext), or the key material to seal into an envelope. */
export type UploadedAttachment = AttachmentJson | { readonly id: string; readonly encrypted: unknown };

export interface UploadOptions {
  readonly name?: string;
  readonly type?: string;
  readonly encrypt?: boolean;
  readonly durationMs?: number;
  readonly onProgress?: (sent: number, total: number) => void;
  readonly signal?: AbortSignal;
}

export interface AttachmentLinks {
  /** Absolute, signed: what goes in `<img src>`, `<audio>`, `<video>`, a download link. */
  readonly url: string;
  readonly thumbnailUrl: string | null;
  /** Unix milliseconds. */
  readonly expiresAt: number;
}

/** The SDK's attachment calls as the spec states them (src/client: `upload`, `download`, `attachmentLinks`, `send` with attachments). */
interface AttachmentCalls {
  upload(input: Blob, options: UploadOptions): Promise<UploadedAttachment>;
  download(attachment: unknown, options?: { onProgress?: (received: number, total: number) => void }): Promise<Uint8Array>;
  attachmentLinks(id: string): Promise<AttachmentLinks>;
  send(threadId: number, body: unknown, options: { attachments?: readonly UploadedAttachment[] }): Promise<unknown>;
}

/**
 * Sends text (maybe empty) with finished uploads: in a plaintext thread the
 * server describes them from its own records; in an encrypted one the SDK
 * puts their keys inside the envelope.
 */
export function sendWithAttachments(client: ChatClient, threadId: number, text: string, attachments: readonly UploadedAttachment[]): Promise<unknown> {
  return attachmentCalls(client).send(threadId, text ? { text } : undefined, { attachments });
}

/** The SDK seen through the calls above (one cast, here, while the SDK and the web client are merged). */
export function attachmentCalls(client: ChatClient): AttachmentCalls {
  return client as unknown as AttachmentCalls;
}

/**
 * An attachment as a message shows it, whether it came from the server
 * (plaintext thread: the server's description) or from inside a decrypted
 * envelope (end-to-end thread: `source` is the SDK's record, handed back to
 * `download` to fetch and decrypt it).
 */
export interface ShownAttachment {
  readonly id: string;
  readonly name: string;
  readonly size: number | undefined;
  readonly mime: string;
  readonly width: number | undefined;
  readonly height: number | undefined;
  /** Milliseconds. */
  readonly duration: number | undefined;
  readonly thumbnail: { readonly width: number; readonly height: number } | undefined;
  /** Set for end-to-end encrypted ones: what `download` takes. */
  readonly encrypted: unknown;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}
function dims(value: unknown): { width: number; height: number } | undefined {
  const record = value as { width?: unknown; height?: unknown } | null | undefined;
  const width = count(record?.width);
  const height = count(record?.height);
  return width && height ? { width, height } : undefined;
}

/** One attachment record, from the server or an envelope; undefined when it names no id. */
function shown(record: unknown, encrypted: boolean): ShownAttachment | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const r = record as Record<string, unknown>;
  const id = text(r.id);
  if (!id) return undefined;
  return {
    id,
    name: text(r.name) ?? 'file',
    size: count(r.size),
    mime: text(r.mime) ?? 'application/octet-stream',
    width: count(r.width),
    height: count(r.height),
    duration: count(r.duration),
    thumbnail: encrypted ? undefined : dims(r.thumbnail),
    encrypted: encrypted ? record : undefined,
  };
}

/**
 * The attachments a message carries: the server's list for plaintext; for an
 * end-to-end message the decrypted body's (the outer list holds ids only).
 */
export function attachmentsOf(message: ClientMessage): ShownAttachment[] {
  if (message.kind === 'e2e') {
    if (message.e2e?.status !== 'ok') return [];
    const inner = (message.body as { attachments?: unknown } | null)?.attachments;
    return Array.isArray(inner) ? inner.flatMap((record) => shown(record, true) ?? []) : [];
  }
  const outer = (message as { attachments?: unknown }).attachments;
  return Array.isArray(outer) ? outer.flatMap((record) => shown(record, false) ?? []) : [];
}

/** What an upload's failure means to the person who chose the file. */
export function uploadErrorText(error: unknown): string {
  const { code, status, message, retryAfterMs } = error as { code?: string; status?: number; message?: string; retryAfterMs?: number };
  const detail = message ? ` (${message})` : '';
  switch (code) {
    case 'file_too_large':
      return `Too large: this server does not take files this big${detail}`;
    case 'quota_exceeded':
      return `Your storage on this server is full${detail}`;
    case 'type_not_allowed':
    case 'unsupported_media_type':
      return 'This server does not take this type of file';
    case 'rate_limited':
      return `Too many uploads at once: try again${retryAfterMs ? ` in ${Math.ceil(retryAfterMs / 1000)} s` : ' in a minute'}`;
    case 'encrypted_not_allowed':
      return 'This server does not take encrypted files, and this chat is encrypted';
    case 'attachments_disabled':
      return 'This server does not take attachments';
    default:
      break;
  }
  if (status === 413) return `Too large for this server${detail}`;
  if (status === 415) return 'This server does not take this type of file';
  if (status === 429) return 'Too many uploads at once: try again in a minute';
  if (status === 404) return 'This server does not take attachments';
  return `Upload failed${detail}`;
}

/** Sizes as people read them: 980 B, 12 KB, 3.4 MB. */
export function sizeText(bytes: number | undefined): string {
  if (bytes === undefined) return '';
  if (bytes < 1000) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** m:ss of a duration in milliseconds. */
export function durationText(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

/** The words a chat list shows for a message that is attachments only. */
export function attachmentSummary(attachments: readonly ShownAttachment[]): string {
  const first = attachments[0];
  if (!first) return '';
  const more = attachments.length > 1 ? ` +${attachments.length - 1}` : '';
  if (first.mime.startsWith('image/')) return `Photo${more}`;
  if (first.mime.startsWith('video/')) return `Video${more}`;
  if (first.mime.startsWith('audio/')) return `Voice message${more}`;
  return `File: ${first.name}${more}`;
}
