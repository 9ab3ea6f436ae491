import type { AttachmentJson } from '../protocol/frames.js';
import { AttachmentHttp } from './attachment-http.js';
import {
  type AttachmentLinks, type ClientAttachment, type DownloadOptions, type EncryptedFileInfo, type EncryptedThumbnailInfo, type UploadOptions,
  type UploadedAttachment, describeEncrypted,
} from './attachment-types.js';
import { decodeSized, encode } from './e2e-bytes.js';
import { ClientError } from './errors.js';
import { type ByteSource, EncryptingReader, FileDecryptor } from './file-crypto.js';
import { Collector, fetchAttachment } from './downloads.js';
import type { Sha256Factory } from './sha256.js';
import { type Sodium, loadSodium } from './sodium.js';
import { type SequentialSource, tusUpload } from './uploads.js';

/** A file to upload: its bytes, and the name and type it came with. */
export interface NamedSource extends ByteSource {
  readonly name?: string | undefined;
  readonly type?: string | undefined;
}

const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
/** What the server is told an encrypted upload is called: nothing about the file. */
const NEUTRAL_NAME = 'encrypted.bin';
const OCTETS = 'application/octet-stream';

/**
 * The client's attachment calls (docs/client.md, "Attachments"): upload
 * (tus, encrypting first when asked), download (decrypting and checking an
 * encrypted one), signed links.
 */
export class Attachments {
  private readonly http: AttachmentHttp;

  constructor(
    server: string,
    token: string,
    private readonly sha256: Sha256Factory,
  ) {
    this.http = new AttachmentHttp(server, token);
  }

  async upload(source: NamedSource, options: UploadOptions): Promise<UploadedAttachment> {
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new ClientError('invalid_field', 'chunkBytes must be a positive whole number of bytes', false);
    const name = options.name ?? source.name ?? 'file';
    try {
      if (!options.encrypt) {
        const metadata: Record<string, string> = { filename: name };
        const type = options.type ?? source.type;
        if (type) metadata.filetype = type;
        if (options.keepMetadata) metadata.keep_metadata = '1';
        if (options.durationMs !== undefined) metadata.duration = String(Math.round(options.durationMs));
        return await tusUpload(this.http, inOrder(source), metadata, { chunkBytes, onProgress: options.onProgress, signal: options.signal });
      }
      const sodium = await loadSodium();
      const file = await this.uploadEncrypted(sodium, source, { chunkBytes, onProgress: options.onProgress, signal: options.signal });
      let thumbnail: EncryptedThumbnailInfo | undefined;
      if (options.thumbnail) {
        const { bytes, width, height, mime } = options.thumbnail;
        const thumbSource = bytes instanceof Uint8Array ? bytesSource(bytes) : blobSource(bytes);
        const uploaded = await this.uploadEncrypted(sodium, thumbSource, { chunkBytes, signal: options.signal });
        thumbnail = { ...uploaded, size: thumbSource.size, width, height, mime: mime ?? 'image/jpeg' };
      }
      const info: EncryptedFileInfo = {
        ...file,
        size: source.size,
        name,
        mime: options.type ?? (source.type || OCTETS),
        ...(options.width !== undefined ? { width: options.width } : {}),
        ...(options.height !== undefined ? { height: options.height } : {}),
        ...(options.durationMs !== undefined ? { duration: Math.round(options.durationMs) } : {}),
        ...(thumbnail ? { thumbnail } : {}),
      };
      return describeEncrypted(info);
    } finally {
      await source.close?.();
    }
  }

  /**
   * The attachment's bytes (or its thumbnail's). An encrypted one is decrypted
   * and checked (its SHA-256, its final chunk, its size): a mismatch rejects
   * with `attachment_corrupt`, no plaintext given.
   */
  async download(attachment: string | ClientAttachment, options: DownloadOptions = {}): Promise<Uint8Array> {
    const info = typeof attachment === 'string' ? undefined : attachment.encrypted;
    const id = typeof attachment === 'string' ? attachment : attachment.id;
    if (!info) {
      const collector = new Collector();
      await fetchAttachment(this.http, id, options, collector.push);
      return collector.bytes();
    }
    if (options.range) throw new ClientError('invalid_field', 'an encrypted attachment is downloaded whole (its hash is checked): no range', false);
    const target = options.thumbnail ? info.thumbnail : info;
    if (!target) throw new ClientError('not_found', `attachment ${id} has no thumbnail`, false);
    const sodium = await loadSodium();
    const key = decodeSized(sodium, target.key, 32);
    if (!key) throw new ClientError('attachment_corrupt', `attachment ${target.id}: its key is not 32 bytes of base64`, false);
    const decryptor = new FileDecryptor(sodium, key, target, this.sha256);
    // The ciphertext is its own upload (the thumbnail too): never the server's /thumbnail of it.
    await fetchAttachment(this.http, target.id, { onProgress: options.onProgress, signal: options.signal }, (bytes) => decryptor.push(bytes));
    return decryptor.finish();
  }

  /** Signed, short-lived absolute links for `<img src>` and players (plaintext attachments: the server cannot decrypt). */
  async links(id: string): Promise<AttachmentLinks> {
    const path = `/v1/attachments/${encodeURIComponent(id)}/links`;
    const reply = await this.http.json<{ url?: unknown; thumbnail_url?: unknown; expires_at?: unknown }>('POST', path);
    if (typeof reply.url !== 'string' || typeof reply.expires_at !== 'number') throw new ClientError('bad_reply', `POST ${path}: no url`, false);
    return {
      url: this.http.absolute(reply.url),
      thumbnailUrl: typeof reply.thumbnail_url === 'string' ? this.http.absolute(reply.thumbnail_url) : null,
      expiresAt: reply.expires_at,
    };
  }

  /** Encrypts `source` under a fresh key while uploading it; checks that the server stored exactly the ciphertext made. */
  private async uploadEncrypted(
    sodium: Sodium,
    source: ByteSource,
    options: { chunkBytes: number; onProgress?: UploadOptions['onProgress']; signal?: AbortSignal | undefined },
  ): Promise<{ id: string; key: string; sha256: string }> {
    const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
    const reader = new EncryptingReader(sodium, source, key, this.sha256);
    const metadata = { filename: NEUTRAL_NAME, filetype: OCTETS, encrypted: '1' };
    const stored: AttachmentJson = await tusUpload(this.http, reader, metadata, options);
    const sha256 = reader.sha256();
    if (stored.sha256 !== undefined && stored.sha256.toLowerCase() !== sha256) {
      throw new ClientError('bad_reply', `the server stored other bytes than the ciphertext sent (SHA-256 ${stored.sha256}, sent ${sha256})`, false);
    }
    const encoded = encode(sodium, key);
    key.fill(0);
    return { id: stored.id, key: encoded, sha256 };
  }
}

/** A random-access source read front to back. */
function inOrder(source: ByteSource): SequentialSource {
  let offset = 0;
  return {
    size: source.size,
    async read(max: number): Promise<Uint8Array> {
      const bytes = await source.read(offset, Math.min(max, source.size - offset));
      offset += bytes.length;
      return bytes;
    },
  };
}

export function bytesSource(bytes: Uint8Array, name?: string, type?: string): NamedSource {
  return { size: bytes.length, name, type, read: async (offset, length) => bytes.subarray(offset, offset + length) };
}

export function blobSource(blob: Blob): NamedSource {
  const name = (blob as { name?: unknown }).name;
  return {
    size: blob.size,
    name: typeof name === 'string' && name !== '' ? name : undefined,
    type: blob.type || undefined,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  };
}
