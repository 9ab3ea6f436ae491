import { randomBytes } from 'node:crypto';

/**
 * Upload ids are also the attachment ids messages carry and the names of
 * staged files: 128 random bits, base64url (22 characters), so that guessing
 * one is hopeless and they are safe in paths and URLs as they are.
 */

const ID_BYTES = 16;
const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export function newUploadId(): string {
  return randomBytes(ID_BYTES).toString('base64url');
}

/** Whether `value` has the shape of an id newUploadId makes: anything else is answered as unknown without a lookup. */
export function isUploadId(value: string): boolean {
  return ID_PATTERN.test(value);
}
