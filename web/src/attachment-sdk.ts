import type { ChatClient, ClientAttachment, ClientMessage, ThumbnailInput, UploadedAttachment } from '../../src/client/browser.js';
import type { SendOptions } from './message-sdk.js';

/**
 * What the web client uses of the SDK's attachments API (docs/client.md,
 * "Attachments"), in one place: the screens never speak tus or build a link
 * themselves. Uploads resume inside the SDK; files in an end-to-end thread
 * are encrypted there too (`encrypt`).
 */

export type { AttachmentLinks, UploadedAttachment } from '../../src/client/browser.js';

/** An image's size and a small preview, made in the browser for an encrypted upload (the server sees only ciphertext). */
export interface ImageFacts {
  readonly width: number;
  readonly height: number;
  readonly thumbnail?: ThumbnailInput & { readonly bytes: Blob };
}

/**
 * Sends text (maybe empty) with finished uploads: in a plaintext thread the
 * server describes them from its own records; in an encrypted one the SDK
 * puts their keys inside the envelope.
 */
export function sendWithAttachments(client: ChatClient, threadId: number, text: string, attachments: readonly UploadedAttachment[], options: SendOptions = {}): Promise<unknown> {
  return client.send(threadId, text ? { text } : null, { ...options, attachments });
}


/**
 * An attachment as a message shows it, whether the server described it
 * (plaintext thread) or its sender did inside the envelope (end-to-end
 * thread: `encrypted`, fetched and decrypted by the SDK's `download`).
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
  readonly encrypted: boolean;
  /** The SDK's record: what `download` takes. */
  readonly source: ClientAttachment;
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function shown(record: ClientAttachment): ShownAttachment | undefined {
  if (typeof record?.id !== 'string') return undefined;
  const thumbnail = record.thumbnail && count(record.thumbnail.width) && count(record.thumbnail.height) ? record.thumbnail : undefined;
  return {
    id: record.id,
    name: typeof record.name === 'string' && record.name ? record.name : 'file',
    size: count(record.size),
    mime: typeof record.mime === 'string' ? record.mime : 'application/octet-stream',
    width: count(record.width),
    height: count(record.height),
    duration: count(record.duration),
    thumbnail,
    encrypted: record.encrypted !== undefined,
    source: record,
  };
}

/**
 * The attachments a message carries, as the SDK gives them: the server's
 * descriptions, or for an opened end-to-end message the sender's. An
 * end-to-end message that did not open shows its reason instead (the server's
 * bare ids say nothing to show).
 */
export function attachmentsOf(message: ClientMessage): ShownAttachment[] {
  if (message.kind === 'e2e' && message.e2e?.status !== 'ok') return [];
  return (message.attachments ?? []).flatMap((record) => shown(record) ?? []);
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
  if (isVoiceMessage(first) && first.width === undefined) return `Voice message${more}`;
  if (first.mime.startsWith('video/')) return `Video${more}`;
  if (first.mime.startsWith('audio/')) return `Audio: ${first.name}${more}`;
  return `File: ${first.name}${more}`;
}

/**
 * A recording made to be sent as a voice message: it comes with its duration
 * (what the web client sends) or the name it gives them. Its sound may be in
 * a video container (WebM), which the server names video/webm.
 */
export function isVoiceMessage(attachment: ShownAttachment): boolean {
  return (attachment.mime.startsWith('audio/') || attachment.mime.startsWith('video/')) && (attachment.duration !== undefined || attachment.name.startsWith('voice-'));
}
