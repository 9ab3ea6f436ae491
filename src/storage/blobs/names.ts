import { BlobStoreError } from '../ports/blobs.js';

/**
 * The names a blob store accepts. Every path the disk store makes is built
 * from one of these, so a hash or an upload id that came from a request can
 * never name a file outside the store's root ("../", "/", NUL, dots).
 */

const SHA256 = /^[0-9a-f]{64}$/;
/** base64url without padding: what upload ids are (128 random bits make 22 characters). */
const UPLOAD_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** Throws BlobStoreError 'invalid_hash' unless `sha256` is 64 lowercase hex digits. */
export function checkHash(sha256: string): string {
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) throw new BlobStoreError('invalid_hash', `not a SHA-256 in lowercase hex: ${JSON.stringify(String(sha256).slice(0, 80))}`);
  return sha256;
}

export function isHash(name: string): boolean {
  return SHA256.test(name);
}

/**
 * Throws BlobStoreError 'not_found' unless `uploadId` is base64url: a name of
 * another shape cannot be an upload's, so nothing is staged under it (the
 * error catalogue has no code of its own for this, and callers look the id up
 * in the database first, so only a bug or an attack gets here).
 */
export function checkUploadId(uploadId: string): string {
  if (typeof uploadId !== 'string' || !UPLOAD_ID.test(uploadId)) throw new BlobStoreError('not_found', `not an upload id: ${JSON.stringify(String(uploadId).slice(0, 80))}`);
  return uploadId;
}

export function isUploadId(name: string): boolean {
  return UPLOAD_ID.test(name);
}

/** Checks a range is whole numbers in order; the stores then read start..min(end, size - 1). */
export function checkRange(range: { readonly start: number; readonly end: number } | undefined): void {
  if (range === undefined) return;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`not a byte range: ${start}-${end}`);
  }
}
