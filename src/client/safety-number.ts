import { decodeSized, utf8Bytes } from './e2e-bytes.js';
import type { Sodium } from './sodium.js';

/**
 * Safety numbers (the shared spec, section 4): one number per pair of users,
 * from both users' account keys, the same on both phones. Signal's numeric
 * fingerprint construction: per user, `hash = version ‖ key ‖ id`, then 5200
 * times `hash = SHA-512(hash ‖ key)`; the first 30 bytes as six 5-byte
 * big-endian chunks, each mod 100000 → 30 digits. The two halves are joined
 * in ascending user id order (Signal sorts by the digits; the spec by id:
 * the same on both sides either way).
 */

const ITERATIONS = 5200;
/** Signal's FINGERPRINT_VERSION, as a 2-byte big-endian short. */
const VERSION = new Uint8Array([0, 0]);

export interface UserKey {
  readonly user_id: number;
  /** The pinned account key, base64. */
  readonly account_key: string;
}

function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** 30 digits for one user's account key. */
export function halfNumber(sodium: Sodium, user: UserKey): string {
  const key = decodeSized(sodium, user.account_key, 32);
  if (!key) throw new Error(`user ${user.user_id}'s account key is malformed`);
  let hash = concat(VERSION, key, utf8Bytes(String(user.user_id)));
  for (let i = 0; i < ITERATIONS; i++) hash = sodium.crypto_hash(concat(hash, key));
  let digits = '';
  for (let offset = 0; offset < 30; offset += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) value = value * 256 + (hash[offset + j] as number);
    digits += String(value % 100000).padStart(5, '0');
  }
  return digits;
}

/** The two users in ascending id order. */
function ordered(a: UserKey, b: UserKey): [UserKey, UserKey] {
  return a.user_id <= b.user_id ? [a, b] : [b, a];
}

/** 60 digits in 12 groups of 5. */
export function safetyNumber(sodium: Sodium, a: UserKey, b: UserKey): string {
  const [first, second] = ordered(a, b);
  const digits = halfNumber(sodium, first) + halfNumber(sodium, second);
  return (digits.match(/\d{5}/g) as string[]).join(' ');
}

/** `chatd-verify:1:<uid_a>:<acct_a>:<uid_b>:<acct_b>`, ids ascending. */
export function qrPayload(a: UserKey, b: UserKey): string {
  const [first, second] = ordered(a, b);
  return `chatd-verify:1:${first.user_id}:${first.account_key}:${second.user_id}:${second.account_key}`;
}

/** Whether a scanned payload names exactly these two users with exactly these keys. */
export function qrMatches(scanned: string, a: UserKey, b: UserKey): boolean {
  return scanned.trim() === qrPayload(a, b);
}
