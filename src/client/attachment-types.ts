import type { AttachmentJson } from '../protocol/frames.js';

/**
 * What the app handles of attachments (docs/client.md, "Attachments"). A
 * plaintext attachment is the server's AttachmentJson; an encrypted one
 * carries the same fields, taken from the (signed, encrypted) envelope, plus
 * `encrypted`: what `download` needs to decrypt and check it.
 */

/** An encrypted file's description, as it travels inside the envelope (docs/attachments.md, "Encrypted attachments"). */
export interface EncryptedFileInfo {
  /** The upload id of the ciphertext. */
  readonly id: string;
  /** The file's secretstream key, base64 (32 bytes). */
  readonly key: string;
  /** Hex SHA-256 of the ciphertext (header included): what the server stores and serves. */
  readonly sha256: string;
  /** Plaintext bytes. */
  readonly size: number;
  readonly name: string;
  readonly mime: string;
  readonly width?: number;
  readonly height?: number;
  /** Milliseconds. */
  readonly duration?: number;
  /** A small preview the sender made and encrypted on its own (the server cannot make one). */
  readonly thumbnail?: EncryptedThumbnailInfo;
}

export interface EncryptedThumbnailInfo {
  readonly id: string;
  readonly key: string;
  readonly sha256: string;
  /** Plaintext bytes. */
  readonly size: number;
  readonly width: number;
  readonly height: number;
  readonly mime: string;
}

/**
 * An attachment as the SDK gives it: on a received message (`message.attachments`) and from `upload`. Pass it to
 * `send` (its id goes out; for an encrypted one, its description goes inside the envelope) and to `download`.
 */
export type ClientAttachment = AttachmentJson & {
  /** Set for an encrypted attachment: `size`, `name`, `mime`… are the plaintext's, `sha256` the ciphertext's. */
  readonly encrypted?: EncryptedFileInfo;
};

/** What `upload` resolves with. */
export type UploadedAttachment = ClientAttachment;

/** A thumbnail the app made for an encrypted upload (the server sees only ciphertext and cannot). */
export interface ThumbnailInput {
  readonly bytes: Uint8Array | Blob;
  readonly width: number;
  readonly height: number;
  /** Default `image/jpeg`. */
  readonly mime?: string;
}

export interface UploadOptions {
  /** Default: the File's name, the path's base name, or `file`. */
  readonly name?: string;
  /** The mime type, for an encrypted upload's envelope (the server sniffs plaintext itself). Default: the Blob's type, or octet-stream. */
  readonly type?: string;
  /** Encrypt the file (for an end-to-end encrypted thread): the server gets only ciphertext. */
  readonly encrypt?: boolean;
  /** Plaintext images: keep EXIF/XMP metadata (location!) instead of having the server strip it. */
  readonly keepMetadata?: boolean;
  /** Audio/video length in ms, as the app measured it. */
  readonly durationMs?: number;
  /** For an encrypted image: its size in pixels, which only the sender can tell. */
  readonly width?: number;
  readonly height?: number;
  /** For an encrypted image: a small preview, encrypted and uploaded beside it. */
  readonly thumbnail?: ThumbnailInput;
  /** Bytes per PATCH request (default 4 MiB): progress is reported after each; a resend after a drop repeats at most one. */
  readonly chunkBytes?: number;
  /** After each stored chunk: bytes the server holds, of `total` (the ciphertext's size when encrypting). */
  readonly onProgress?: (sent: number, total: number) => void;
  /** Cancels: the request in flight is aborted, the upload deleted on the server, the promise rejects with `aborted`. */
  readonly signal?: AbortSignal;
}

export interface DownloadOptions {
  /** The preview (the server's WebP thumbnail; for an encrypted attachment, the sender's encrypted one). */
  readonly thumbnail?: boolean;
  /** Bytes received so far, of `total` (undefined when the server did not say). */
  readonly onProgress?: (received: number, total: number | undefined) => void;
  /** Plaintext attachments only: bytes `start` to `end` (inclusive; default: to the end). */
  readonly range?: { readonly start: number; readonly end?: number };
  readonly signal?: AbortSignal;
}

/** Links a browser can put in `<img src>`, `<audio>`, `<video>`: absolute, signed, short-lived. */
export interface AttachmentLinks {
  readonly url: string;
  readonly thumbnailUrl: string | null;
  /** ms epoch. */
  readonly expiresAt: number;
}

/**
 * The plaintext an encrypted message with attachments seals instead of the app's body alone: the marker names the
 * shape, so a receiver never mistakes an app's own body for it (and the server can neither add nor strip it).
 */
export const ATTACHMENTS_MARKER = 'chatd-attachments-v1';

export interface SealedWithAttachments {
  readonly chatd: typeof ATTACHMENTS_MARKER;
  /** The app's body; null for a message of attachments only. */
  readonly body: unknown;
  readonly attachments: readonly EncryptedFileInfo[];
}

export function sealedWithAttachments(body: unknown, files: readonly EncryptedFileInfo[]): SealedWithAttachments {
  return { chatd: ATTACHMENTS_MARKER, body: body ?? null, attachments: files };
}

/** The app's body and the attachments of a decrypted body; undefined when it is a plain body (no attachments). */
export function readSealedAttachments(plain: unknown): { body: unknown; attachments: ClientAttachment[] } | undefined {
  if (!isRecord(plain) || plain.chatd !== ATTACHMENTS_MARKER || !Array.isArray(plain.attachments)) return undefined;
  const attachments: ClientAttachment[] = [];
  for (const item of plain.attachments) {
    const info = readFileInfo(item);
    if (info) attachments.push(describeEncrypted(info));
  }
  return { body: plain.body ?? null, attachments };
}

/** The AttachmentJson-shaped view of an encrypted file, for rendering like any other. */
export function describeEncrypted(info: EncryptedFileInfo): ClientAttachment {
  return {
    id: info.id, name: info.name, size: info.size, mime: info.mime, sha256: info.sha256,
    ...(info.width !== undefined ? { width: info.width } : {}),
    ...(info.height !== undefined ? { height: info.height } : {}),
    ...(info.duration !== undefined ? { duration: info.duration } : {}),
    ...(info.thumbnail ? { thumbnail: { width: info.thumbnail.width, height: info.thumbnail.height } } : {}),
    encrypted: info,
  };
}

/** A sender's description checked field by field: one that is malformed is dropped (its sender signed it, but it cannot be used). */
function readFileInfo(value: unknown): EncryptedFileInfo | undefined {
  if (!isRecord(value)) return undefined;
  const { id, key, sha256, size, name, mime, width, height, duration, thumbnail } = value;
  if (typeof id !== 'string' || typeof key !== 'string' || !isHash(sha256) || !isCount(size) || typeof name !== 'string' || typeof mime !== 'string') return undefined;
  if (!optionalCount(width) || !optionalCount(height) || !optionalCount(duration)) return undefined;
  const sizes = { width, height, duration };
  let thumb: EncryptedThumbnailInfo | undefined;
  if (thumbnail !== undefined && thumbnail !== null) {
    if (!isRecord(thumbnail)) return undefined;
    const t = thumbnail;
    if (typeof t.id !== 'string' || typeof t.key !== 'string' || !isHash(t.sha256) || !isCount(t.size) || !isCount(t.width) || !isCount(t.height) || typeof t.mime !== 'string') return undefined;
    thumb = { id: t.id, key: t.key, sha256: t.sha256, size: t.size, width: t.width, height: t.height, mime: t.mime };
  }
  return {
    id, key, sha256, size, name, mime,
    ...(sizes.width !== undefined ? { width: sizes.width } : {}),
    ...(sizes.height !== undefined ? { height: sizes.height } : {}),
    ...(sizes.duration !== undefined ? { duration: sizes.duration } : {}),
    ...(thumb ? { thumbnail: thumb } : {}),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isHash(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{64}$/i.test(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function optionalCount(value: unknown): value is number | undefined {
  return value === undefined || isCount(value);
}
