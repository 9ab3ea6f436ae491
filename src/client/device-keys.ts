import type { AccountKeyJson, DeviceKeysJson } from '../protocol/frames.js';
import { decode, decodeSized, encode, signedArray, verifies } from './e2e-bytes.js';
import type { DeviceSecrets, OwnAccount } from './e2e-records.js';
import type { Sodium } from './sodium.js';

/**
 * Device keys and the account key (the shared spec, section 1): making them,
 * the byte strings they sign, and checking what the server hands out. Pure
 * functions of their arguments.
 */

const DEVICE = 'chatd-device-v2';
const DEVICE_CERT = 'chatd-device-cert-v2';
const ACCOUNT = 'chatd-account-v2';
const FINGERPRINT = 'chatd-fingerprint-v2';

/** The public half of a device, what its signatures cover. */
export interface DevicePublic {
  readonly user_id: number;
  readonly device_id: number;
  readonly enc_key: string;
  readonly sign_key: string;
  readonly counter: number;
}

/** `device_bytes(domain)` of the spec: `[domain, user_id, device_id, enc_key, sign_key, counter]`. */
export function deviceBytes(domain: string, device: DevicePublic): Uint8Array {
  return signedArray(domain, device.user_id, device.device_id, device.enc_key, device.sign_key, device.counter);
}

/** A device's keys from the server, decoded and checked: well-formed and signed by their own signing key for these ids. */
export interface VerifiedDevice extends DevicePublic {
  readonly encKey: Uint8Array;
  readonly signKey: Uint8Array;
  readonly account_signature: string | null;
  readonly revoked: boolean;
  readonly fingerprint: string;
}

/**
 * At most this many encryption key pairs from before rotations are kept
 * (besides the TTL): a server that makes this device rotate at every connect
 * (rotatePastServer) cannot make the store grow without bound. What was
 * sealed to an older pair than these no longer opens here.
 */
export const MAX_PREVIOUS_ENC = 20;

/**
 * The highest key counter this device takes from the server: an honest one
 * is one more per rotation and never comes near it; one above is a server
 * pushing this device toward counters it could no longer raise (2^53), not
 * a store restored from a backup (own-device.ts, rotatePastServer).
 */
export const MAX_SANE_COUNTER = 2 ** 31;

export function generateDevice(sodium: Sodium, deviceId: number): DeviceSecrets {
  const enc = sodium.crypto_box_keypair();
  const signing = sodium.crypto_sign_keypair();
  return {
    device_id: deviceId,
    counter: 1,
    enc_public: encode(sodium, enc.publicKey),
    enc_secret: encode(sodium, enc.privateKey),
    sign_public: encode(sodium, signing.publicKey),
    sign_secret: encode(sodium, signing.privateKey),
  };
}

/**
 * A new encryption key pair under the same identity, counter + 1. The old pair
 * is kept for what was sealed to it, until `ttlMs` after its retirement;
 * older ones past that are dropped here too.
 */
export function rotateDevice(sodium: Sodium, secrets: DeviceSecrets, now: number, ttlMs: number): DeviceSecrets {
  const enc = sodium.crypto_box_keypair();
  const previous = [{ public: secrets.enc_public, secret: secrets.enc_secret, retired_at: now }, ...(secrets.previous_enc ?? [])];
  return {
    ...secrets,
    counter: secrets.counter + 1,
    enc_public: encode(sodium, enc.publicKey),
    enc_secret: encode(sodium, enc.privateKey),
    previous_enc: previous.filter((pair) => pair.retired_at + ttlMs > now).slice(0, MAX_PREVIOUS_ENC),
  };
}

/** The secrets without previous encryption keys older than `ttlMs` (or past MAX_PREVIOUS_ENC); the same object when nothing went. */
export function dropExpiredKeys(secrets: DeviceSecrets, now: number, ttlMs: number): DeviceSecrets {
  const kept = (secrets.previous_enc ?? []).filter((pair) => pair.retired_at + ttlMs > now).slice(0, MAX_PREVIOUS_ENC);
  return kept.length === (secrets.previous_enc ?? []).length ? secrets : { ...secrets, previous_enc: kept };
}

export function publicOf(secrets: DeviceSecrets, userId: number): DevicePublic {
  return { user_id: userId, device_id: secrets.device_id, enc_key: secrets.enc_public, sign_key: secrets.sign_public, counter: secrets.counter };
}

/** What `keys_publish` sends: the keys, the device's own signature, and the account key's certificate when this device holds it. */
export function publication(sodium: Sodium, secrets: DeviceSecrets, userId: number, account: OwnAccount | undefined): {
  enc_key: string; sign_key: string; counter: number; signature: string; account_signature: string | null;
} {
  const device = publicOf(secrets, userId);
  const signature = encode(sodium, sodium.crypto_sign_detached(deviceBytes(DEVICE, device), decode(sodium, secrets.sign_secret)));
  const accountSecret = account?.account_secret;
  return {
    enc_key: device.enc_key,
    sign_key: device.sign_key,
    counter: device.counter,
    signature,
    account_signature: accountSecret ? certifyDevice(sodium, device, accountSecret) : null,
  };
}

/** The account key's signature over a device: it is approved. */
export function certifyDevice(sodium: Sodium, device: DevicePublic, accountSecret: string): string {
  return encode(sodium, sodium.crypto_sign_detached(deviceBytes(DEVICE_CERT, device), decode(sodium, accountSecret)));
}

/** Whether `signature` is `accountKey`'s certificate of this device (these ids, keys and counter). */
export function isCertified(sodium: Sodium, device: DevicePublic, signature: string | null | undefined, accountKey: string): boolean {
  const key = decodeSized(sodium, accountKey, 32);
  return key !== undefined && verifies(sodium, signature, deviceBytes(DEVICE_CERT, device), key);
}

/** A device entry of `keys`/`keys_changed`, when well-formed and signed by its own signing key; undefined otherwise. */
export function verifyDevice(sodium: Sodium, keys: DeviceKeysJson): VerifiedDevice | undefined {
  if (!Number.isSafeInteger(keys.user_id) || !Number.isSafeInteger(keys.device_id) || !Number.isSafeInteger(keys.counter) || keys.counter < 1) return undefined;
  const encKey = decodeSized(sodium, keys.enc_key, 32);
  const signKey = decodeSized(sodium, keys.sign_key, 32);
  if (!encKey || !signKey) return undefined;
  const device: DevicePublic = { user_id: keys.user_id, device_id: keys.device_id, enc_key: keys.enc_key, sign_key: keys.sign_key, counter: keys.counter };
  if (!verifies(sodium, keys.signature, deviceBytes(DEVICE, device), signKey)) return undefined;
  return {
    ...device,
    encKey,
    signKey,
    account_signature: typeof keys.account_signature === 'string' ? keys.account_signature : null,
    revoked: keys.revoked === true,
    fingerprint: deviceFingerprint(sodium, keys.user_id, keys.device_id, keys.sign_key),
  };
}

/**
 * 60 digits in groups of five naming one device's identity: a hash of its
 * user id, device id and signing key (so the same key under another user or
 * device reads differently). The new device shows it; the approving one compares.
 */
export function deviceFingerprint(sodium: Sodium, userId: number, deviceId: number, signKey: string): string {
  const hash = sodium.crypto_generichash(30, signedArray(FINGERPRINT, userId, deviceId, signKey));
  const groups: string[] = [];
  for (let i = 0; i < 30; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) value = value * 256 + (hash[i + j] as number);
    groups.push(String(value % 100000).padStart(5, '0'), String(Math.floor(value / 100000) % 100000).padStart(5, '0'));
  }
  return groups.join(' ');
}

/** An account key with its secret half. */
export type AccountPair = Required<Pick<OwnAccount, 'user_id' | 'account_key' | 'account_secret'>>;

/** A new account key pair for `userId`, with its self-signature (what `account_publish` sends). */
export function generateAccount(sodium: Sodium, userId: number): { account: AccountPair; signature: string } {
  const pair = sodium.crypto_sign_keypair();
  const account = { user_id: userId, account_key: encode(sodium, pair.publicKey), account_secret: encode(sodium, pair.privateKey) };
  return { account, signature: accountSignature(sodium, account) };
}

export function accountSignature(sodium: Sodium, account: AccountPair): string {
  return encode(sodium, sodium.crypto_sign_detached(signedArray(ACCOUNT, account.user_id, account.account_key), decode(sodium, account.account_secret)));
}

/** An account key entry, when well-formed and signed by itself for this user. */
export function verifyAccount(sodium: Sodium, entry: AccountKeyJson): boolean {
  const key = decodeSized(sodium, entry.account_key, 32);
  return key !== undefined && Number.isSafeInteger(entry.user_id) && verifies(sodium, entry.signature, signedArray(ACCOUNT, entry.user_id, entry.account_key), key);
}

/** Whether `secret` is the secret half of `accountKey` (a device handed the account key checks it before keeping it). */
export function secretMatches(sodium: Sodium, accountKey: string, secret: string): boolean {
  const key = decodeSized(sodium, accountKey, 32);
  const secretBytes = decodeSized(sodium, secret, 64);
  if (!key || !secretBytes) return false;
  const probe = signedArray('chatd-account-probe-v2', accountKey);
  try {
    return sodium.crypto_sign_verify_detached(sodium.crypto_sign_detached(probe, secretBytes), probe, key);
  } catch {
    return false;
  }
}
