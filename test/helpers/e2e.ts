import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';

/** A device's published keys, made with node:crypto (the SDK makes them with libsodium): what keys_publish takes. */
export function deviceKeys(): { enc_key: string; sign_key: string; signature: string } {
  const enc = generateKeyPairSync('x25519');
  const signing = generateKeyPairSync('ed25519');
  const encRaw = Buffer.from(enc.publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const signRaw = Buffer.from(signing.publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  return { enc_key: encRaw.toString('base64'), sign_key: signRaw.toString('base64'), signature: sign(null, encRaw, signing.privateKey).toString('base64') };
}

/** An envelope with the right shape and random bytes where the ciphertext, sealed keys and signature go. */
export function envelope(senderDevice: number, deviceIds: readonly number[]): Record<string, unknown> {
  return {
    v: 1,
    sender_device: senderDevice,
    nonce: randomBytes(24).toString('base64'),
    ciphertext: randomBytes(48).toString('base64'),
    keys: Object.fromEntries(deviceIds.map((id) => [String(id), randomBytes(80).toString('base64')])),
    signature: randomBytes(64).toString('base64'),
  };
}
