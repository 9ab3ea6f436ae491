import { createPublicKey, verify } from 'node:crypto';

/** Key sizes of libsodium's crypto_box (X25519) and crypto_sign (Ed25519). */
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

/**
 * Whether `signature` is `signKey`'s Ed25519 signature of `encKey` (all raw
 * bytes): a device's encryption key is vouched for by its signing key, so a
 * peer that trusts the signing key (fingerprint) can trust the other too.
 */
export function keySignatureValid(encKey: Buffer, signKey: Buffer, signature: Buffer): boolean {
  if (encKey.length !== PUBLIC_KEY_BYTES || signKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: signKey.toString('base64url') }, format: 'jwk' });
    return verify(null, encKey, key, signature);
  } catch {
    return false;
  }
}
