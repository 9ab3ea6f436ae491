/**
 * Checks a device's published keys the way every client will use them: with
 * libsodium. Keys the server takes but a client's libsodium refuses (a weak
 * X25519 point, an unusual base64 spelling) would leave senders and server
 * disagreeing on a thread's devices for ever, so the server refuses them first.
 */
export interface KeyChecker {
  /** Why these keys are unusable, or undefined when they are fine. Values are base64. */
  problem(encKey: string, signKey: string, signature: string): Promise<{ field: string; message: string } | undefined>;
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
  return {
    async problem(encKey, signKey, signature) {
      const sodium = await load();
      const enc = canonical(encKey, PUBLIC_KEY_BYTES);
      const sign = canonical(signKey, PUBLIC_KEY_BYTES);
      const sig = canonical(signature, SIGNATURE_BYTES);
      if (!enc) return { field: 'enc_key', message: `enc_key must be ${PUBLIC_KEY_BYTES} bytes in standard, padded base64` };
      if (!sign) return { field: 'sign_key', message: `sign_key must be ${PUBLIC_KEY_BYTES} bytes in standard, padded base64` };
      if (!sig) return { field: 'signature', message: `signature must be ${SIGNATURE_BYTES} bytes in standard, padded base64` };
      let signed = false;
      try {
        signed = sodium.crypto_sign_verify_detached(sig, enc, sign);
      } catch {
        signed = false;
      }
      if (!signed) return { field: 'signature', message: "signature must be sign_key's Ed25519 signature of enc_key" };
      try {
        // libsodium refuses low-order points: a key no message key could be sealed to.
        sodium.crypto_box_seal(new Uint8Array(32), enc);
      } catch {
        return { field: 'enc_key', message: 'enc_key is not a usable X25519 public key' };
      }
      return undefined;
    },
  };
}

/** The bytes of `value` when it is exactly the standard padded base64 of `bytes` bytes. */
function canonical(value: string, bytes: number): Uint8Array | undefined {
  const decoded = Buffer.from(value, 'base64');
  return decoded.length === bytes && decoded.toString('base64') === value ? new Uint8Array(decoded) : undefined;
}
