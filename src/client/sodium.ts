/** The libsodium functions the SDK uses (libsodium-wrappers, loaded on first use). */
export interface Sodium {
  crypto_box_keypair(): { publicKey: Uint8Array; privateKey: Uint8Array };
  crypto_sign_keypair(): { publicKey: Uint8Array; privateKey: Uint8Array };
  crypto_sign_detached(message: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  crypto_box_seal(message: Uint8Array, publicKey: Uint8Array): Uint8Array;
  crypto_box_seal_open(ciphertext: Uint8Array, publicKey: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_aead_xchacha20poly1305_ietf_keygen(): Uint8Array;
  crypto_aead_xchacha20poly1305_ietf_encrypt(message: Uint8Array, additional: Uint8Array, secretNonce: null, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  crypto_aead_xchacha20poly1305_ietf_decrypt(secretNonce: null, ciphertext: Uint8Array, additional: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  /** BLAKE2b; keyed when `key` is given. */
  crypto_generichash(length: number, message: Uint8Array, key?: Uint8Array | null): Uint8Array;
  /** SHA-512 (libsodium's crypto_hash is crypto_hash_sha512). */
  crypto_hash(message: Uint8Array): Uint8Array;
  randombytes_buf(length: number): Uint8Array;
  to_base64(bytes: Uint8Array, variant: number): string;
  from_base64(text: string, variant: number): Uint8Array;
  readonly base64_variants: { readonly ORIGINAL: number };
  readonly crypto_aead_xchacha20poly1305_ietf_NPUBBYTES: number;
}

let loading: Promise<Sodium> | undefined;

/** Loads libsodium once (about 25 ms; its WebAssembly is large, so apps that never encrypt never load it). */
export function loadSodium(): Promise<Sodium> {
  loading ??= import('libsodium-wrappers').then(async (module) => {
    const sodium = ((module as { default?: unknown }).default ?? module) as Sodium & { ready: Promise<void> };
    await sodium.ready;
    return sodium;
  });
  return loading;
}
