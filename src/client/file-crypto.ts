import { ClientError } from './errors.js';
import type { Sha256, Sha256Factory } from './sha256.js';
import { toHex } from './sha256.js';
import type { Sodium } from './sodium.js';

/**
 * The encrypted attachment format (docs/attachments.md, "Encrypted
 * attachments"): libsodium crypto_secretstream_xchacha20poly1305 under a fresh
 * 32-byte key per file; the file is the stream's 24-byte header followed by
 * the plaintext in 64 KiB chunks, each encrypted to 17 bytes more (no
 * additional data), the last one (possibly empty) tagged TAG_FINAL. A
 * truncated file lacks the final tag; a chunk moved, dropped or altered does
 * not authenticate; bytes after the final chunk are refused.
 */
export const PLAIN_CHUNK_BYTES = 64 * 1024;
export const HEADER_BYTES = 24;
export const CHUNK_OVERHEAD_BYTES = 17;
const CIPHER_CHUNK_BYTES = PLAIN_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES;

/** The ciphertext size of a `plainBytes`-byte file. */
export function encryptedSize(plainBytes: number): number {
  const chunks = Math.max(1, Math.ceil(plainBytes / PLAIN_CHUNK_BYTES));
  return HEADER_BYTES + plainBytes + chunks * CHUNK_OVERHEAD_BYTES;
}

/** Random-access plaintext: a Uint8Array, a Blob, a file (node.ts). */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes from `offset` (fewer only at the end). */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** The ciphertext of a source, produced in order as it is read, hashed on the way (SHA-256). */
export class EncryptingReader {
  readonly size: number;
  private readonly state: unknown;
  private pending: Uint8Array;
  private plainOffset = 0;
  private finished = false;
  private readonly hash: Sha256;

  constructor(
    private readonly sodium: Sodium,
    private readonly source: ByteSource,
    key: Uint8Array,
    sha256: Sha256Factory,
  ) {
    this.size = encryptedSize(source.size);
    const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
    this.state = state;
    this.pending = header;
    this.hash = sha256();
    this.hash.update(header);
  }

  /** The next ciphertext bytes, `max` at most; empty once all was read. */
  async read(max: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let total = 0;
    while (total < max) {
      if (this.pending.length === 0) {
        if (this.finished) break;
        this.pending = await this.nextChunk();
      }
      const take = this.pending.subarray(0, Math.min(max - total, this.pending.length));
      parts.push(take);
      total += take.length;
      this.pending = this.pending.subarray(take.length);
    }
    return concat(parts, total);
  }

  /** Hex SHA-256 of the whole ciphertext; once everything was read. */
  sha256(): string {
    if (!this.finished || this.pending.length > 0) throw new Error('the ciphertext was not read to its end');
    return toHex(this.hash.digest());
  }

  private async nextChunk(): Promise<Uint8Array> {
    const length = Math.min(PLAIN_CHUNK_BYTES, this.source.size - this.plainOffset);
    const plain = length > 0 ? await this.source.read(this.plainOffset, length) : new Uint8Array(0);
    if (plain.length !== length) throw new ClientError('invalid_field', `the file changed while it was read (${this.plainOffset + plain.length} of ${this.source.size} bytes)`, false);
    this.plainOffset += length;
    const last = this.plainOffset >= this.source.size;
    const sodium = this.sodium;
    const tag = last ? sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL : sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    const chunk = sodium.crypto_secretstream_xchacha20poly1305_push(this.state, plain, null, tag);
    this.finished = last;
    this.hash.update(chunk);
    return chunk;
  }
}

/**
 * Decrypts a downloaded file as its bytes arrive, into a buffer of the
 * plaintext size the envelope states. `finish` checks the SHA-256 of the
 * ciphertext against the envelope's, the final tag and the size, and only
 * then gives the plaintext: a mismatch is an `attachment_corrupt` error,
 * never garbage (the partial plaintext is wiped).
 */
export class FileDecryptor {
  private state: unknown;
  private buffered: Uint8Array = new Uint8Array(0);
  private readonly plain: Uint8Array;
  private written = 0;
  private sawFinal = false;
  private readonly hash: Sha256;

  constructor(
    private readonly sodium: Sodium,
    private readonly key: Uint8Array,
    private readonly expected: { readonly size: number; readonly sha256: string },
    sha256: Sha256Factory,
  ) {
    if (!Number.isSafeInteger(expected.size) || expected.size < 0) throw corrupt('its stated size is not a byte count');
    this.plain = new Uint8Array(expected.size);
    this.hash = sha256();
  }

  push(bytes: Uint8Array): void {
    this.hash.update(bytes);
    this.buffered = this.buffered.length === 0 ? bytes.slice() : concat([this.buffered, bytes], this.buffered.length + bytes.length);
    if (this.state === undefined) {
      if (this.buffered.length < HEADER_BYTES) return;
      this.state = this.sodium.crypto_secretstream_xchacha20poly1305_init_pull(this.buffered.subarray(0, HEADER_BYTES), this.key);
      this.buffered = this.buffered.subarray(HEADER_BYTES);
    }
    // A whole chunk may still be the last one: it is opened once more bytes (or the end) show where it ends.
    while (this.buffered.length > CIPHER_CHUNK_BYTES) {
      this.open(this.buffered.subarray(0, CIPHER_CHUNK_BYTES));
      this.buffered = this.buffered.subarray(CIPHER_CHUNK_BYTES);
    }
  }

  finish(): Uint8Array {
    try {
      if (this.state === undefined) throw corrupt('it is shorter than its header');
      if (this.buffered.length > 0) this.open(this.buffered);
      this.buffered = new Uint8Array(0);
      if (!this.sawFinal) throw corrupt('it is truncated (no final chunk)');
      if (this.written !== this.plain.length) throw corrupt(`it holds ${this.written} bytes, the message says ${this.plain.length}`);
      if (toHex(this.hash.digest()) !== this.expected.sha256.toLowerCase()) throw corrupt('its SHA-256 is not the one the message states');
      return this.plain;
    } catch (error) {
      this.plain.fill(0);
      throw error;
    }
  }

  private open(chunk: Uint8Array): void {
    if (this.sawFinal) throw this.wiped(corrupt('it has bytes after its final chunk'));
    const opened = this.sodium.crypto_secretstream_xchacha20poly1305_pull(this.state, chunk, null);
    if (!opened) throw this.wiped(corrupt('a chunk does not decrypt (altered, reordered, or another key)'));
    if (this.written + opened.message.length > this.plain.length) throw this.wiped(corrupt(`it holds more than the ${this.plain.length} bytes the message says`));
    this.plain.set(opened.message, this.written);
    this.written += opened.message.length;
    if (opened.tag === this.sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL) this.sawFinal = true;
  }

  private wiped(error: ClientError): ClientError {
    this.plain.fill(0);
    return error;
  }
}

function corrupt(why: string): ClientError {
  return new ClientError('attachment_corrupt', `the encrypted attachment cannot be trusted: ${why}`, false);
}

export function concat(parts: readonly Uint8Array[], total = parts.reduce((sum, part) => sum + part.length, 0)): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
