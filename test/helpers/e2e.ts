import { randomBytes } from 'node:crypto';

/**
 * Protocol 2's keys, certificates and envelopes, made with libsodium straight
 * from docs/protocol.md ("Requests: end-to-end encryption") and the shared
 * spec — deliberately not through src/client: a second implementation, so
 * that the server is held to the documents rather than to the SDK.
 */

interface Sodium {
  crypto_box_keypair(): { publicKey: Uint8Array; privateKey: Uint8Array };
  crypto_sign_keypair(): { publicKey: Uint8Array; privateKey: Uint8Array };
  crypto_sign_detached(message: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  crypto_box_seal(message: Uint8Array, publicKey: Uint8Array): Uint8Array;
  crypto_box_seal_open(ciphertext: Uint8Array, publicKey: Uint8Array, privateKey: Uint8Array): Uint8Array;
  crypto_aead_xchacha20poly1305_ietf_encrypt(message: Uint8Array, additional: Uint8Array, secretNonce: null, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  crypto_aead_xchacha20poly1305_ietf_decrypt(secretNonce: null, ciphertext: Uint8Array, additional: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  crypto_generichash(length: number, message: Uint8Array, key: Uint8Array): Uint8Array;
  randombytes_buf(length: number): Uint8Array;
}

let sodium: Sodium | undefined;

/** Call once (in `before`) before anything else here. */
export async function loadSodium(): Promise<void> {
  const module = (await import('libsodium-wrappers')) as { default?: unknown };
  const loaded = (module.default ?? module) as Sodium & { ready: Promise<void> };
  await loaded.ready;
  sodium = loaded;
}

function na(): Sodium {
  if (!sodium) throw new Error('call loadSodium() first');
  return sodium;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const raw = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

/** JSON([domain, user_id, device_id, enc_key, sign_key, counter]) */
export function deviceBytes(domain: string, d: { userId: number; deviceId: number; encKey: string; signKey: string; counter: number }): Uint8Array {
  return utf8(JSON.stringify([domain, d.userId, d.deviceId, d.encKey, d.signKey, d.counter]));
}

/** A user's account key pair. */
export class TestAccount {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;

  constructor(readonly userId: number) {
    const pair = na().crypto_sign_keypair();
    this.publicKey = pair.publicKey;
    this.secretKey = pair.privateKey;
  }

  get key(): string {
    return b64(this.publicKey);
  }

  /** The fields of account_publish: the key and its self-signature over JSON(["chatd-account-v2", user_id, account_key]). */
  publication(userId = this.userId): { account_key: string; signature: string } {
    return { account_key: this.key, signature: b64(na().crypto_sign_detached(utf8(JSON.stringify(['chatd-account-v2', userId, this.key])), this.secretKey)) };
  }

  /** The account signature of a device's certificate: over device_bytes("chatd-device-cert-v2"). */
  certify(device: TestDevice, overrides: Partial<{ userId: number; deviceId: number; counter: number }> = {}): string {
    return b64(na().crypto_sign_detached(deviceBytes('chatd-device-cert-v2', { ...device.statement(), ...overrides }), this.secretKey));
  }
}

/** A device's key pairs and counter. */
export class TestDevice {
  encPublic: Uint8Array;
  encSecret: Uint8Array;
  readonly signPublic: Uint8Array;
  readonly signSecret: Uint8Array;
  counter = 1;

  constructor(
    readonly userId: number,
    readonly deviceId: number,
  ) {
    const enc = na().crypto_box_keypair();
    const sign = na().crypto_sign_keypair();
    [this.encPublic, this.encSecret, this.signPublic, this.signSecret] = [enc.publicKey, enc.privateKey, sign.publicKey, sign.privateKey];
  }

  get encKey(): string {
    return b64(this.encPublic);
  }

  get signKey(): string {
    return b64(this.signPublic);
  }

  statement(): { userId: number; deviceId: number; encKey: string; signKey: string; counter: number } {
    return { userId: this.userId, deviceId: this.deviceId, encKey: this.encKey, signKey: this.signKey, counter: this.counter };
  }

  /** A new encryption key pair and the next counter. */
  rotate(): void {
    const enc = na().crypto_box_keypair();
    [this.encPublic, this.encSecret] = [enc.publicKey, enc.privateKey];
    this.counter += 1;
  }

  /** The fields of keys_publish; `account_signature` only when given. Ids may be overridden to sign for another device. */
  publication(accountSignature?: string, overrides: Partial<{ userId: number; deviceId: number }> = {}): Record<string, unknown> {
    const signature = b64(na().crypto_sign_detached(deviceBytes('chatd-device-v2', { ...this.statement(), ...overrides }), this.signSecret));
    return {
      enc_key: this.encKey,
      sign_key: this.signKey,
      counter: this.counter,
      signature,
      ...(accountSignature === undefined ? {} : { account_signature: accountSignature }),
    };
  }

  /** The entry keys_get and keys_changed give for this device. */
  entry(accountSignature: string | null, revoked = false): Record<string, unknown> {
    const { signature } = this.publication() as { signature: string };
    return { user_id: this.userId, device_id: this.deviceId, enc_key: this.encKey, sign_key: this.signKey, counter: this.counter, signature, account_signature: accountSignature, revoked };
  }
}

/** What the envelope's AD and signature bind it to. */
export interface EnvelopeContext {
  readonly threadId: number;
  readonly clientMsgId: string;
  readonly senderUserId: number;
}

/** An e2e body of protocol 2: K sealed to each recipient, the body under a key derived from K, commit, signature. */
export function sealEnvelope(sender: TestDevice, context: EnvelopeContext, body: unknown, recipients: ReadonlyArray<{ deviceId: number; encKey: string }>): Record<string, unknown> {
  const s = na();
  const k = s.randombytes_buf(32);
  const aeadKey = s.crypto_generichash(32, utf8('chatd-e2e-v2-aead'), k);
  const commit = b64(s.crypto_generichash(32, utf8('chatd-e2e-v2-commit'), k));
  const nonce = b64(s.randombytes_buf(24));
  const ad = utf8(JSON.stringify(['chatd-e2e-v2', context.threadId, context.clientMsgId, context.senderUserId, sender.deviceId]));
  const ciphertext = b64(s.crypto_aead_xchacha20poly1305_ietf_encrypt(utf8(JSON.stringify(body)), ad, null, raw(nonce), aeadKey));
  const keys = Object.fromEntries(recipients.map((r) => [String(r.deviceId), b64(s.crypto_box_seal(k, raw(r.encKey)))]));
  const signed = JSON.stringify([
    'chatd-e2e-v2',
    context.threadId,
    context.clientMsgId,
    context.senderUserId,
    sender.deviceId,
    nonce,
    commit,
    ciphertext,
    Object.keys(keys)
      .sort()
      .map((id) => [id, keys[id]]),
  ]);
  const signature = b64(s.crypto_sign_detached(utf8(signed), sender.signSecret));
  return { v: 2, sender_device: sender.deviceId, nonce, commit, ciphertext, keys, signature };
}

/** Opens an envelope as `receiver`, checking the signature and the commitment; throws on any mismatch. */
export function openEnvelope(receiver: TestDevice, envelope: any, context: EnvelopeContext, senderSignKey: string): unknown {
  const s = na();
  const keys = envelope.keys as Record<string, string>;
  const signed = JSON.stringify([
    'chatd-e2e-v2',
    context.threadId,
    context.clientMsgId,
    context.senderUserId,
    envelope.sender_device,
    envelope.nonce,
    envelope.commit,
    envelope.ciphertext,
    Object.keys(keys)
      .sort()
      .map((id) => [id, keys[id]]),
  ]);
  if (!s.crypto_sign_verify_detached(raw(envelope.signature), utf8(signed), raw(senderSignKey))) throw new Error('bad signature');
  const sealed = keys[String(receiver.deviceId)];
  if (!sealed) throw new Error('no key for this device');
  const k = s.crypto_box_seal_open(raw(sealed), receiver.encPublic, receiver.encSecret);
  if (b64(s.crypto_generichash(32, utf8('chatd-e2e-v2-commit'), k)) !== envelope.commit) throw new Error('commit mismatch');
  const ad = utf8(JSON.stringify(['chatd-e2e-v2', context.threadId, context.clientMsgId, context.senderUserId, envelope.sender_device]));
  const plain = s.crypto_aead_xchacha20poly1305_ietf_decrypt(null, raw(envelope.ciphertext), ad, raw(envelope.nonce), s.crypto_generichash(32, utf8('chatd-e2e-v2-aead'), k));
  return JSON.parse(Buffer.from(plain).toString('utf8'));
}

/** An envelope of protocol 2's shape with random bytes where the ciphertext, commit, sealed keys and signature go. */
export function envelope(senderDevice: number, deviceIds: readonly number[]): Record<string, unknown> {
  return {
    v: 2,
    sender_device: senderDevice,
    nonce: randomBytes(24).toString('base64'),
    commit: randomBytes(32).toString('base64'),
    ciphertext: randomBytes(48).toString('base64'),
    keys: Object.fromEntries(deviceIds.map((id) => [String(id), randomBytes(80).toString('base64')])),
    signature: randomBytes(64).toString('base64'),
  };
}

/** What publishes keys over a test socket. */
interface Requester {
  expect(frame: Record<string, unknown>, type: string): Promise<any>;
}

/**
 * Makes the connected device an approved one: publishes `account` as the
 * user's account key when `publishAccount`, then the device's keys with the
 * account's certificate. Returns the device.
 */
export async function approvedDevice(socket: Requester, userId: number, deviceId: number, account: TestAccount, publishAccount = true): Promise<TestDevice> {
  if (publishAccount) await socket.expect({ type: 'account_publish', ...account.publication() }, 'ok');
  const device = new TestDevice(userId, deviceId);
  await socket.expect({ type: 'keys_publish', ...device.publication(account.certify(device)) }, 'ok');
  return device;
}
