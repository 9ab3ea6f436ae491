import { decode, decodeSized, encode, fromUtf8, signedArray, utf8Bytes, verifies } from './e2e-bytes.js';
import type { Sodium } from './sodium.js';

/**
 * The body of an `e2e` message (the shared spec, section 2). Version 2 is
 * sent; version 1 (older history) is still opened, never made.
 *
 * v2: a fresh 32-byte key K per message; the body is encrypted under a key
 * derived from K, and a second derivation (`commit`) is signed with the
 * envelope, so every recipient who opens it provably holds the same K and
 * reads the same body (XChaCha20-Poly1305 alone lets one ciphertext open to
 * two bodies under two keys: review M1). The sender's user id is bound in the
 * additional data and the signature (review H1).
 */

export interface EnvelopeV2 {
  readonly v: 2;
  readonly sender_device: number;
  readonly nonce: string;
  readonly commit: string;
  readonly ciphertext: string;
  readonly keys: Readonly<Record<string, string>>;
  readonly signature: string;
}

export interface EnvelopeV1 {
  readonly v: 1;
  readonly sender_device: number;
  readonly nonce: string;
  readonly ciphertext: string;
  readonly keys: Readonly<Record<string, string>>;
  readonly signature: string;
}

export type Envelope = EnvelopeV1 | EnvelopeV2;

/** What a message is bound to besides its envelope. */
export interface Binding {
  readonly thread_id: number;
  readonly client_msg_id: string;
  /** The user the server says sent it (v2 signs it; v1 cannot). */
  readonly sender_user_id: number;
}

const V2 = 'chatd-e2e-v2';
const V1 = 'chatd-e2e-v1';

/** The envelope's fields with the types they must have; undefined for anything else. */
export function readEnvelope(body: unknown): Envelope | undefined {
  const e = body as { readonly [K in keyof EnvelopeV2]?: unknown } | null;
  if (!e || typeof e !== 'object' || (e.v !== 1 && e.v !== 2) || !Number.isSafeInteger(e.sender_device)) return undefined;
  if (typeof e.nonce !== 'string' || typeof e.ciphertext !== 'string' || typeof e.signature !== 'string') return undefined;
  if (!e.keys || typeof e.keys !== 'object' || Array.isArray(e.keys) || Object.values(e.keys as object).some((value) => typeof value !== 'string')) return undefined;
  if (e.v === 2 && typeof e.commit !== 'string') return undefined;
  return e as unknown as Envelope;
}

/** The two keys derived from K: one encrypts, the other commits to K (BLAKE2b keyed by K). */
function derive(sodium: Sodium, key: Uint8Array): { aead: Uint8Array; commit: Uint8Array } {
  return {
    aead: sodium.crypto_generichash(32, utf8Bytes('chatd-e2e-v2-aead'), key),
    commit: sodium.crypto_generichash(32, utf8Bytes('chatd-e2e-v2-commit'), key),
  };
}

function additional(binding: Binding, senderDevice: number): Uint8Array {
  return signedArray(V2, binding.thread_id, binding.client_msg_id, binding.sender_user_id, senderDevice);
}

function sortedKeys(keys: Readonly<Record<string, string>>): Array<[string, string]> {
  return Object.keys(keys).sort().map((id) => [id, keys[id] as string]);
}

function signedV2(binding: Binding, envelope: Omit<EnvelopeV2, 'signature' | 'v'>): Uint8Array {
  return signedArray(V2, binding.thread_id, binding.client_msg_id, binding.sender_user_id, envelope.sender_device, envelope.nonce, envelope.commit, envelope.ciphertext, sortedKeys(envelope.keys));
}

function signedV1(binding: Binding, envelope: EnvelopeV1): Uint8Array {
  return signedArray(V1, binding.thread_id, binding.client_msg_id, envelope.sender_device, envelope.nonce, envelope.ciphertext, sortedKeys(envelope.keys));
}

/** A recipient of a message key. */
export interface Recipient {
  readonly device_id: number;
  readonly encKey: Uint8Array;
}

/** Encrypts `body` as a v2 envelope for `recipients`, signed by the sending device. Returns K too (this device keeps nothing of it). */
export function sealEnvelope(
  sodium: Sodium,
  sender: { readonly device_id: number; readonly signSecret: Uint8Array },
  binding: Binding,
  body: unknown,
  recipients: readonly Recipient[],
): EnvelopeV2 {
  const key = sodium.randombytes_buf(32);
  const { aead, commit } = derive(sodium, key);
  const nonce = sodium.randombytes_buf(sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(utf8Bytes(JSON.stringify(body)), additional(binding, sender.device_id), null, nonce, aead);
  const keys: Record<string, string> = {};
  for (const recipient of recipients) keys[String(recipient.device_id)] = encode(sodium, sodium.crypto_box_seal(key, recipient.encKey));
  const unsigned = { sender_device: sender.device_id, nonce: encode(sodium, nonce), commit: encode(sodium, commit), ciphertext: encode(sodium, ciphertext), keys };
  const signature = encode(sodium, sodium.crypto_sign_detached(signedV2(binding, unsigned), sender.signSecret));
  return { v: 2, ...unsigned, signature };
}

/** Whether the sending device signed this envelope, bound to this thread, message id and (v2) user. */
export function signatureValid(sodium: Sodium, envelope: Envelope, binding: Binding, signKey: Uint8Array): boolean {
  const bytes = envelope.v === 2 ? signedV2(binding, envelope) : signedV1(binding, envelope);
  return verifies(sodium, envelope.signature, bytes, signKey);
}

/** An X25519 key pair of this device (current, or from before a rotation). */
export interface EncPair {
  readonly public: Uint8Array;
  readonly secret: Uint8Array;
}

/** K as sealed to `deviceId`, opened with one of its key pairs; undefined when there is none or none opens it. */
export function unsealKey(sodium: Sodium, envelope: Envelope, deviceId: number, pairs: readonly EncPair[]): Uint8Array | undefined {
  const sealed = decodeSized(sodium, envelope.keys[String(deviceId)], 80);
  if (!sealed) return undefined;
  for (const pair of pairs) {
    try {
      return sodium.crypto_box_seal_open(sealed, pair.public, pair.secret);
    } catch {
      // Not sealed to this pair: an older one may open it.
    }
  }
  return undefined;
}

/**
 * Decrypts a (signature-checked) envelope with K. `bad_commit`: K is not the
 * one the sender signed for (checked before decrypting); `undecryptable`: the
 * ciphertext does not open or is not JSON.
 */
export function decryptEnvelope(sodium: Sodium, envelope: Envelope, binding: Binding, key: Uint8Array): { body: unknown } | 'bad_commit' | 'undecryptable' {
  let aead = key;
  let ad: Uint8Array;
  if (envelope.v === 2) {
    const derived = derive(sodium, key);
    const commit = decodeSized(sodium, envelope.commit, 32);
    if (!commit || !bytesEqual(commit, derived.commit)) return 'bad_commit';
    aead = derived.aead;
    ad = additional(binding, envelope.sender_device);
  } else {
    ad = signedArray(V1, binding.thread_id, binding.client_msg_id, envelope.sender_device);
  }
  try {
    const plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, decode(sodium, envelope.ciphertext), ad, decode(sodium, envelope.nonce), aead);
    return { body: JSON.parse(fromUtf8(plain)) as unknown };
  } catch {
    return 'undecryptable';
  }
}

/** Equal length and bytes (the commit is public: no need for constant time, but it costs nothing). */
function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= (a[i] as number) ^ (b[i] as number);
  return difference === 0;
}
