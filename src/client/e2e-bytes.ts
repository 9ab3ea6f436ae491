import type { Sodium } from './sodium.js';

/**
 * The byte-level conventions every encrypted structure shares (the shared
 * spec): binary values as standard padded base64, and every signed byte
 * string the UTF-8 of a JSON array whose first element is a domain string, so
 * no two kinds of signed data can be mistaken for each other.
 */

const text = new TextEncoder();
const utf8 = new TextDecoder();

export function encode(sodium: Sodium, bytes: Uint8Array): string {
  return sodium.to_base64(bytes, sodium.base64_variants.ORIGINAL);
}

/** Throws on anything but standard padded base64. */
export function decode(sodium: Sodium, value: string): Uint8Array {
  return sodium.from_base64(value, sodium.base64_variants.ORIGINAL);
}

/** Base64 that decodes to exactly `length` bytes; undefined otherwise. */
export function decodeSized(sodium: Sodium, value: unknown, length: number): Uint8Array | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const bytes = decode(sodium, value);
    return bytes.length === length && encode(sodium, bytes) === value ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/** The bytes of a signed array: `[domain, ...fields]` as JSON (strings quoted and escaped: unambiguous). */
export function signedArray(domain: string, ...fields: readonly unknown[]): Uint8Array {
  return text.encode(JSON.stringify([domain, ...fields]));
}

export function utf8Bytes(value: string): Uint8Array {
  return text.encode(value);
}

export function fromUtf8(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/** Ed25519 verification that answers false for malformed input instead of throwing. */
export function verifies(sodium: Sodium, signature: string | null | undefined, message: Uint8Array, publicKey: Uint8Array): boolean {
  const bytes = decodeSized(sodium, signature, 64);
  if (!bytes) return false;
  try {
    return sodium.crypto_sign_verify_detached(bytes, message, publicKey);
  } catch {
    return false;
  }
}
