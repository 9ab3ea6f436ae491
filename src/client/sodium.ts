/** The libsodium functions the SDK uses (libsodium-wrappers, loaded on first use). */
export interface Sodium {
  crypto_box_keypair(): { publicKey: Uint8Array; privateKey: Uint8Array };
  crypto_sign_keypair(): { publicKey: Uint8Array; privateKey: Uint8Array };
  crypto_sign_detached(message: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  crypto_box_seal(message: Uint8Array, publicKey: Uint8Array): Uint8Array;
  crypto_box_seed_keypair(seed: Uint8Array): { publicKey: Uint8Array; privateKey: Uint8Array };
  crypto_box_easy(message: Uint8Array, nonce: Uint8Array, publicKey: Uint8Array, privateKey: Uint8Array): Uint8Array;
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
  // Encrypted attachments (file-crypto.ts). A state is an opaque handle into libsodium's heap.
  crypto_secretstream_xchacha20poly1305_keygen(): Uint8Array;
  crypto_secretstream_xchacha20poly1305_init_push(key: Uint8Array): { state: unknown; header: Uint8Array };
  crypto_secretstream_xchacha20poly1305_push(state: unknown, message: Uint8Array, additional: Uint8Array | null, tag: number): Uint8Array;
  crypto_secretstream_xchacha20poly1305_init_pull(header: Uint8Array, key: Uint8Array): unknown;
  /** False when the chunk does not authenticate. */
  crypto_secretstream_xchacha20poly1305_pull(state: unknown, ciphertext: Uint8Array, additional: Uint8Array | null): { message: Uint8Array; tag: number } | false;
  readonly crypto_secretstream_xchacha20poly1305_TAG_MESSAGE: number;
  readonly crypto_secretstream_xchacha20poly1305_TAG_FINAL: number;
}

let loading: Promise<Sodium> | undefined;

/** Loads libsodium once (about 25 ms; its WebAssembly is large, so apps that never encrypt never load it). */
export function loadSodium(): Promise<Sodium> {
  loading ??= import('libsodium-wrappers').then(async (module) => {
    const sodium = ((module as { default?: unknown }).default ?? module) as Sodium & { ready: Promise<void> };
    await sodium.ready;
    return withPlatformRandom(sodium);
  });
  return loading;
}

/**
 * libsodium.js, where no `self.crypto` exists (Node), draws its randomness
 * four bytes at a time through `crypto.randomBytes`: about 190 µs for 32
 * bytes, most of what sealing a message key cost. Web Crypto's
 * `getRandomValues` (global in browsers and Node 20+) reads the same OS
 * generator in about 7 µs, so randombytes_buf and crypto_box_seal draw from
 * it. The sealed box is libsodium's construction, byte for byte: an ephemeral
 * X25519 key pair, nonce = BLAKE2b-192(ephemeral pk ‖ recipient pk),
 * crypto_box_easy, output ephemeral pk ‖ ciphertext (crypto_box_seal_open
 * opens it).
 */
export function withPlatformRandom(sodium: Sodium): Sodium {
  const webCrypto = (globalThis as { crypto?: { getRandomValues<T extends ArrayBufferView>(array: T): T } }).crypto;
  if (!webCrypto?.getRandomValues) return sodium;
  const random = (length: number): Uint8Array => webCrypto.getRandomValues(new Uint8Array(length));
  return Object.assign(Object.create(sodium) as Sodium, {
    randombytes_buf: random,
    crypto_box_seal(message: Uint8Array, publicKey: Uint8Array): Uint8Array {
      const ephemeral = sodium.crypto_box_seed_keypair(random(32));
      const both = new Uint8Array(64);
      both.set(ephemeral.publicKey);
      both.set(publicKey, 32);
      const nonce = sodium.crypto_generichash(24, both);
      const ciphertext = sodium.crypto_box_easy(message, nonce, publicKey, ephemeral.privateKey);
      ephemeral.privateKey.fill(0);
      const sealed = new Uint8Array(32 + ciphertext.length);
      sealed.set(ephemeral.publicKey);
      sealed.set(ciphertext, 32);
      return sealed;
    },
  });
}
