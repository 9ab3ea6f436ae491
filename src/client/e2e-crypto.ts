import type { DeviceKeysJson, MessageJson } from '../protocol/frames.js';
import type { Sodium } from './sodium.js';

/** This device's key pairs, base64 (kept in the client store: they never leave the device). */
export interface DeviceSecrets {
  readonly device_id: number;
  readonly enc_public: string;
  readonly enc_secret: string;
  readonly sign_public: string;
  readonly sign_secret: string;
  /** Encryption key pairs this device had before rotations, newest first: messages sealed to them still open. */
  readonly previous_enc?: ReadonlyArray<{ readonly public: string; readonly secret: string }>;
}

/** Old encryption keys kept after rotations (messages sealed to them, in flight or in history, still open). */
const KEPT_ROTATIONS = 20;

/** Another (or this) device's verified public keys. */
export interface PeerDevice {
  readonly userId: number;
  readonly deviceId: number;
  readonly encKey: Uint8Array;
  readonly signKey: Uint8Array;
  /** Safety-number style: compare it out of band to know the keys are the person's, not the server's. */
  readonly fingerprint: string;
}

/**
 * What became of an encrypted message: `ok` (decrypted, signature verified),
 * `undecryptable` (no key for this device, e.g. a device added after the
 * message was sent, or a damaged ciphertext), `bad_signature` (not signed by
 * the device it claims: forged or altered), `unknown_sender` (the sending
 * device's keys could not be had).
 */
export type E2eStatus = 'ok' | 'undecryptable' | 'bad_signature' | 'unknown_sender';

export interface Envelope {
  readonly v: 1;
  readonly sender_device: number;
  readonly nonce: string;
  readonly ciphertext: string;
  readonly keys: Readonly<Record<string, string>>;
  readonly signature: string;
}

const text = new TextEncoder();
const utf8 = new TextDecoder();

/**
 * The scheme of docs/e2e.md, with libsodium: a fresh XChaCha20-Poly1305 key
 * per message encrypts the body; the key is sealed (crypto_box_seal) to every
 * device of the thread; the sending device signs the whole envelope with
 * Ed25519. Pure functions of the keys: no I/O.
 */
export class E2eCrypto {
  private readonly encPublic: Uint8Array;
  private readonly encSecret: Uint8Array;
  private readonly signSecret: Uint8Array;

  constructor(
    private readonly sodium: Sodium,
    readonly secrets: DeviceSecrets,
  ) {
    this.encPublic = this.decode(secrets.enc_public);
    this.encSecret = this.decode(secrets.enc_secret);
    this.signSecret = this.decode(secrets.sign_secret);
  }

  static generate(sodium: Sodium, deviceId: number): DeviceSecrets {
    const enc = sodium.crypto_box_keypair();
    const signing = sodium.crypto_sign_keypair();
    const encode = (bytes: Uint8Array): string => sodium.to_base64(bytes, sodium.base64_variants.ORIGINAL);
    return {
      device_id: deviceId,
      enc_public: encode(enc.publicKey),
      enc_secret: encode(enc.privateKey),
      sign_public: encode(signing.publicKey),
      sign_secret: encode(signing.privateKey),
    };
  }

  /**
   * A new encryption key pair; the signing key (the device's identity, what its
   * fingerprint is made of) stays, so old signatures still verify and peers'
   * fingerprints do not change. The old pair is kept for what was sealed to it.
   */
  static rotated(sodium: Sodium, secrets: DeviceSecrets): DeviceSecrets {
    const enc = sodium.crypto_box_keypair();
    const encode = (bytes: Uint8Array): string => sodium.to_base64(bytes, sodium.base64_variants.ORIGINAL);
    const previous = [{ public: secrets.enc_public, secret: secrets.enc_secret }, ...(secrets.previous_enc ?? [])].slice(0, KEPT_ROTATIONS);
    return { ...secrets, enc_public: encode(enc.publicKey), enc_secret: encode(enc.privateKey), previous_enc: previous };
  }

  /** What keys_publish sends: the public keys, the encryption key signed by the signing key. */
  publication(): { enc_key: string; sign_key: string; signature: string } {
    return {
      enc_key: this.secrets.enc_public,
      sign_key: this.secrets.sign_public,
      signature: this.encode(this.sodium.crypto_sign_detached(this.encPublic, this.signSecret)),
    };
  }

  /** The device's keys if its encryption key carries its signing key's signature; undefined otherwise. */
  verifyDevice(keys: DeviceKeysJson): PeerDevice | undefined {
    try {
      const encKey = this.decode(keys.enc_key);
      const signKey = this.decode(keys.sign_key);
      if (!this.sodium.crypto_sign_verify_detached(this.decode(keys.signature), encKey, signKey)) return undefined;
      return { userId: keys.user_id, deviceId: keys.device_id, encKey, signKey, fingerprint: this.fingerprint(signKey) };
    } catch {
      return undefined;
    }
  }

  /** Encrypts `body` for these devices (this one among them), as message `clientMsgId` of thread `threadId`. */
  seal(threadId: number, clientMsgId: string, body: unknown, devices: readonly PeerDevice[]): Envelope {
    const { sodium } = this;
    const key = sodium.crypto_aead_xchacha20poly1305_ietf_keygen();
    const nonce = sodium.randombytes_buf(sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    const bound = { thread_id: threadId, client_msg_id: clientMsgId, sender_device: this.secrets.device_id };
    const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(text.encode(JSON.stringify(body)), additional(bound), null, nonce, key);
    const keys: Record<string, string> = {};
    for (const device of devices) keys[String(device.deviceId)] = this.encode(sodium.crypto_box_seal(key, device.encKey));
    const unsigned = { v: 1 as const, sender_device: this.secrets.device_id, nonce: this.encode(nonce), ciphertext: this.encode(ciphertext), keys };
    return { ...unsigned, signature: this.encode(sodium.crypto_sign_detached(signedBytes(bound, unsigned), this.signSecret)) };
  }

  /** Verifies and decrypts an e2e message; `sender` is the sending device's keys, when known. */
  open(message: Pick<MessageJson, 'thread_id' | 'client_msg_id' | 'body'>, sender: PeerDevice | undefined): { status: E2eStatus; body?: unknown } {
    const envelope = wellFormed(message.body);
    if (!envelope) return { status: 'bad_signature' };
    if (!sender) return { status: 'unknown_sender' };
    const bound = { thread_id: message.thread_id, client_msg_id: message.client_msg_id, sender_device: envelope.sender_device };
    try {
      if (!this.sodium.crypto_sign_verify_detached(this.decode(envelope.signature), signedBytes(bound, envelope), sender.signKey)) {
        return { status: 'bad_signature' };
      }
    } catch {
      return { status: 'bad_signature' };
    }
    const sealed = envelope.keys[String(this.secrets.device_id)];
    if (typeof sealed !== 'string') return { status: 'undecryptable' };
    try {
      const key = this.unseal(this.decode(sealed));
      const plain = this.sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        null,
        this.decode(envelope.ciphertext),
        additional(bound),
        this.decode(envelope.nonce),
        key,
      );
      return { status: 'ok', body: JSON.parse(utf8.decode(plain)) as unknown };
    } catch {
      return { status: 'undecryptable' };
    }
  }

  /** Opens a sealed message key with the current encryption key, or one from before a rotation. */
  private unseal(sealed: Uint8Array): Uint8Array {
    const pairs = [{ public: this.encPublic, secret: this.encSecret }, ...(this.secrets.previous_enc ?? []).map((pair) => ({ public: this.decode(pair.public), secret: this.decode(pair.secret) }))];
    for (const pair of pairs) {
      try {
        return this.sodium.crypto_box_seal_open(sealed, pair.public, pair.secret);
      } catch {
        // Not sealed to this one: try an older one.
      }
    }
    throw new Error('sealed to none of this device\'s keys');
  }

  /** 60 digits in groups of five, from a hash of the signing key (the same on every device that sees it). */
  fingerprint(signKey: Uint8Array): string {
    const hash = this.sodium.crypto_generichash(30, signKey);
    const groups: string[] = [];
    for (let i = 0; i < 30; i += 5) {
      let value = 0;
      for (let j = 0; j < 5; j++) value = value * 256 + (hash[i + j] as number);
      groups.push(String(value % 100000).padStart(5, '0'), String(Math.floor(value / 100000) % 100000).padStart(5, '0'));
    }
    return groups.join(' ');
  }


  private encode(bytes: Uint8Array): string {
    return this.sodium.to_base64(bytes, this.sodium.base64_variants.ORIGINAL);
  }

  private decode(value: string): Uint8Array {
    return this.sodium.from_base64(value, this.sodium.base64_variants.ORIGINAL);
  }
}

/** What a message is bound to besides its envelope: its thread, its client id and its sending device. */
interface Binding {
  readonly thread_id: number;
  readonly client_msg_id: string;
  readonly sender_device: number;
}

/** The ciphertext's additional data: it cannot be moved to another thread, sender or message id. */
function additional(bound: Binding): Uint8Array {
  return text.encode(JSON.stringify(['chatd-e2e-v1', bound.thread_id, bound.client_msg_id, bound.sender_device]));
}

/**
 * What the sender signs: the binding and every field of the envelope, as a
 * JSON array (unambiguous: each string is quoted and escaped, the sealed keys
 * are sorted pairs).
 */
function signedBytes(bound: Binding, envelope: Omit<Envelope, 'signature'>): Uint8Array {
  const keys = Object.keys(envelope.keys)
    .sort()
    .map((id) => [id, envelope.keys[id]]);
  return text.encode(JSON.stringify(['chatd-e2e-v1', bound.thread_id, bound.client_msg_id, envelope.sender_device, envelope.nonce, envelope.ciphertext, keys]));
}

/** The envelope, when every field has the type it must; undefined for anything else. */
function wellFormed(body: unknown): Envelope | undefined {
  const e = body as Partial<Envelope> | null;
  if (!e || typeof e !== 'object' || e.v !== 1 || typeof e.sender_device !== 'number') return undefined;
  if (typeof e.nonce !== 'string' || typeof e.ciphertext !== 'string' || typeof e.signature !== 'string') return undefined;
  if (!e.keys || typeof e.keys !== 'object' || Object.values(e.keys).some((value) => typeof value !== 'string')) return undefined;
  return e as Envelope;
}
