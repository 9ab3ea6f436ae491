/**
 * Checks published keys the way every client will use them: with libsodium.
 * Keys the server takes but a client's libsodium refuses (a weak X25519 point,
 * an unusual base64 spelling) would leave senders and server disagreeing on a
 * thread's devices for ever, so the server refuses them first.
 *
 * What is signed (docs/protocol.md, "Requests: end-to-end encryption"): the
 * UTF-8 of a JSON array whose first element names what it is, so that no
 * signature of one kind can pass for another, and whose other elements bind
 * the key to the user and device ids the server authenticated.
 */
export interface KeyChecker {
  /** Why a device's keys are unusable (sizes, X25519 point, self-signature), or undefined when they are fine. */
  deviceProblem(device: DeviceStatement, signature: string): Promise<Problem | undefined>;
  /** Whether `accountSignature` is the account key's signature of the device's certificate. */
  certified(device: DeviceStatement, accountKey: string, accountSignature: string): Promise<boolean>;
  /** Why an account key is unusable (size, self-signature), or undefined when it is fine. */
  accountProblem(userId: number, accountKey: string, signature: string): Promise<Problem | undefined>;
}

/** What a device says of itself; base64 keys. */
export interface DeviceStatement {
  readonly userId: number;
  readonly deviceId: number;
  readonly encKey: string;
  readonly signKey: string;
  readonly counter: number;
}

export interface Problem {
  readonly field: string;
  readonly message: string;
}

export const DEVICE_DOMAIN = 'chatd-device-v2';
export const CERTIFICATE_DOMAIN = 'chatd-device-cert-v2';
export const ACCOUNT_DOMAIN = 'chatd-account-v2';

/** JSON([domain, user_id, device_id, enc_key, sign_key, counter]) as UTF-8. */
export function deviceBytes(domain: typeof DEVICE_DOMAIN | typeof CERTIFICATE_DOMAIN, device: DeviceStatement): Uint8Array {
  return utf8(JSON.stringify([domain, device.userId, device.deviceId, device.encKey, device.signKey, device.counter]));
}

/** JSON(["chatd-account-v2", user_id, account_key]) as UTF-8. */
export function accountBytes(userId: number, accountKey: string): Uint8Array {
  return utf8(JSON.stringify([ACCOUNT_DOMAIN, userId, accountKey]));
}

interface Sodium {
  readonly ready: Promise<void>;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  crypto_box_seal(message: Uint8Array, publicKey: Uint8Array): Uint8Array;
}

const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;

/** libsodium loads (about 25 ms) at the first check, not at start-up. */
export function createKeyChecker(): KeyChecker {
  let loading: Promise<Sodium> | undefined;
  const load = (): Promise<Sodium> =>
    (loading ??= import('libsodium-wrappers').then(async (module) => {
      const sodium = ((module as { default?: unknown }).default ?? module) as Sodium;
      await sodium.ready;
      return sodium;
    }));
  const verify = (sodium: Sodium, signature: Uint8Array, message: Uint8Array, key: Uint8Array): boolean => {
    try {
      return sodium.crypto_sign_verify_detached(signature, message, key);
    } catch {
      return false;
    }
  };
  return {
    async deviceProblem(device, signature) {
      const sodium = await load();
      const enc = canonical(device.encKey, PUBLIC_KEY_BYTES);
      const sign = canonical(device.signKey, PUBLIC_KEY_BYTES);
      const sig = canonical(signature, SIGNATURE_BYTES);
      if (!enc) return sizeProblem('enc_key', PUBLIC_KEY_BYTES);
      if (!sign) return sizeProblem('sign_key', PUBLIC_KEY_BYTES);
      if (!sig) return sizeProblem('signature', SIGNATURE_BYTES);
      try {
        // libsodium refuses low-order points: a key no message key could be sealed to.
        sodium.crypto_box_seal(new Uint8Array(32), enc);
      } catch {
        return { field: 'enc_key', message: 'enc_key is not a usable X25519 public key' };
      }
      if (!verify(sodium, sig, deviceBytes(DEVICE_DOMAIN, device), sign)) {
        return {
          field: 'signature',
          message: `signature must be sign_key's Ed25519 signature of ["${DEVICE_DOMAIN}", user_id, device_id, enc_key, sign_key, counter] with this device's ids (${device.userId}, ${device.deviceId})`,
        };
      }
      return undefined;
    },
    async certified(device, accountKey, accountSignature) {
      const sodium = await load();
      const key = canonical(accountKey, PUBLIC_KEY_BYTES);
      const sig = canonical(accountSignature, SIGNATURE_BYTES);
      return key !== undefined && sig !== undefined && verify(sodium, sig, deviceBytes(CERTIFICATE_DOMAIN, device), key);
    },
    async accountProblem(userId, accountKey, signature) {
      const sodium = await load();
      const key = canonical(accountKey, PUBLIC_KEY_BYTES);
      const sig = canonical(signature, SIGNATURE_BYTES);
      if (!key) return sizeProblem('account_key', PUBLIC_KEY_BYTES);
      if (!sig) return sizeProblem('signature', SIGNATURE_BYTES);
      if (!verify(sodium, sig, accountBytes(userId, accountKey), key)) {
        return { field: 'signature', message: `signature must be account_key's Ed25519 signature of ["${ACCOUNT_DOMAIN}", user_id, account_key] with your user id (${userId})` };
      }
      return undefined;
    },
  };
}

function sizeProblem(field: string, bytes: number): Problem {
  return { field, message: `${field} must be ${bytes} bytes in standard, padded base64` };
}

/** The bytes of `value` when it is exactly the standard padded base64 of `bytes` bytes. */
export function canonical(value: string, bytes: number): Uint8Array | undefined {
  const decoded = Buffer.from(value, 'base64');
  return decoded.length === bytes && decoded.toString('base64') === value ? new Uint8Array(decoded) : undefined;
}

/** The decoded length of canonical base64 (standard alphabet, padded, zero trailing bits), else undefined. */
export function canonicalLength(value: string): number | undefined {
  const decoded = Buffer.from(value, 'base64');
  return decoded.toString('base64') === value ? decoded.length : undefined;
}

function utf8(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}
