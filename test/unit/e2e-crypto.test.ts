import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { UntrustedSender, openDeviceMessage, sealDeviceMessage } from '../../src/client/device-message.js';
import {
  MAX_PREVIOUS_ENC, certifyDevice, deviceBytes, dropExpiredKeys, generateAccount, generateDevice, isCertified, publication, rotateDevice, secretMatches, verifyAccount, verifyDevice,
} from '../../src/client/device-keys.js';
import { signedArray } from '../../src/client/e2e-bytes.js';
import { decryptEnvelope, readEnvelope, sealEnvelope, signatureValid, unsealKey } from '../../src/client/envelope.js';
import { halfNumber, qrMatches, qrPayload, safetyNumber } from '../../src/client/safety-number.js';
import { loadSodium } from '../../src/client/sodium.js';

/** The byte strings and checks of the shared spec, sections 1–4, as the SDK makes them. */

const sodium = await loadSodium();
const b64 = (bytes: Uint8Array): string => sodium.to_base64(bytes, 1);
const raw = (text: string): Uint8Array => sodium.from_base64(text, 1);

describe('device keys and certificates', () => {
  it('signs exactly the spec\'s device_bytes, and a report under other ids or counter does not verify', () => {
    const secrets = generateDevice(sodium, 12);
    const published = publication(sodium, secrets, 7, undefined);
    assert.equal(published.account_signature, null);
    assert.equal(published.counter, 1);
    const bytes = new TextEncoder().encode(JSON.stringify(['chatd-device-v2', 7, 12, secrets.enc_public, secrets.sign_public, 1]));
    assert.deepEqual(deviceBytes('chatd-device-v2', { user_id: 7, device_id: 12, enc_key: secrets.enc_public, sign_key: secrets.sign_public, counter: 1 }), bytes);
    assert.ok(sodium.crypto_sign_verify_detached(raw(published.signature), bytes, raw(secrets.sign_public)));
    const keys = { user_id: 7, device_id: 12, ...published, revoked: false };
    assert.ok(verifyDevice(sodium, keys));
    assert.equal(verifyDevice(sodium, { ...keys, user_id: 9 }), undefined);
    assert.equal(verifyDevice(sodium, { ...keys, device_id: 13 }), undefined);
    assert.equal(verifyDevice(sodium, { ...keys, counter: 2 }), undefined);
  });

  it('an account key certifies a device over device_bytes("chatd-device-cert-v2"); another key\'s certificate does not count', () => {
    const { account, signature } = generateAccount(sodium, 7);
    assert.ok(verifyAccount(sodium, { user_id: 7, account_key: account.account_key, signature }));
    assert.ok(sodium.crypto_sign_verify_detached(raw(signature), signedArray('chatd-account-v2', 7, account.account_key), raw(account.account_key)));
    assert.equal(verifyAccount(sodium, { user_id: 8, account_key: account.account_key, signature }), false, 'bound to its user');
    const secrets = generateDevice(sodium, 12);
    const published = publication(sodium, secrets, 7, account);
    const device = { user_id: 7, device_id: 12, enc_key: secrets.enc_public, sign_key: secrets.sign_public, counter: 1 };
    assert.ok(isCertified(sodium, device, published.account_signature, account.account_key));
    const other = generateAccount(sodium, 7).account;
    assert.equal(isCertified(sodium, device, certifyDevice(sodium, device, other.account_secret), account.account_key), false);
    assert.equal(isCertified(sodium, { ...device, counter: 2 }, published.account_signature, account.account_key), false, 'a rotation needs a new certificate');
    assert.ok(secretMatches(sodium, account.account_key, account.account_secret));
    assert.equal(secretMatches(sodium, account.account_key, other.account_secret), false);
  });

  it('a rotation raises the counter, keeps the identity, and old encryption keys expire after the TTL', () => {
    const first = generateDevice(sodium, 12);
    const second = rotateDevice(sodium, first, 1000, 500);
    assert.equal(second.counter, 2);
    assert.equal(second.sign_public, first.sign_public);
    assert.deepEqual(second.previous_enc?.map((pair) => pair.public), [first.enc_public]);
    const third = rotateDevice(sodium, second, 1600, 500);
    assert.deepEqual(third.previous_enc?.map((pair) => pair.public), [second.enc_public], 'the first pair was retired 600 ms ago: dropped');
    assert.equal(dropExpiredKeys(third, 1700, 500), third, 'nothing expired: the same secrets');
    assert.deepEqual(dropExpiredKeys(third, 2200, 500).previous_enc, [], 'at connect, expired pairs go too');
  });

  it('keeps at most MAX_PREVIOUS_ENC old encryption pairs, newest first, whatever the TTL', () => {
    let secrets = generateDevice(sodium, 12);
    const retired: string[] = [];
    for (let i = 0; i < MAX_PREVIOUS_ENC + 5; i++) {
      retired.unshift(secrets.enc_public);
      secrets = rotateDevice(sodium, secrets, 1000 + i, 1e12);
    }
    assert.equal(MAX_PREVIOUS_ENC, 20);
    assert.deepEqual(secrets.previous_enc?.map((pair) => pair.public), retired.slice(0, MAX_PREVIOUS_ENC));
    const bloated = { ...secrets, previous_enc: [...secrets.previous_enc!, ...secrets.previous_enc!] };
    assert.equal(dropExpiredKeys(bloated, 2000, 1e12).previous_enc?.length, MAX_PREVIOUS_ENC, 'a store from before the cap is trimmed at connect');
  });
});

describe('envelope v2', () => {
  const alice = generateDevice(sodium, 12);
  const bob = generateDevice(sodium, 20);
  const binding = { thread_id: 5, client_msg_id: 'cm-1', sender_user_id: 7 };
  const pairs = (secrets: typeof bob) => [{ public: raw(secrets.enc_public), secret: raw(secrets.enc_secret) }];
  const envelope = sealEnvelope(sodium, { device_id: 12, signSecret: raw(alice.sign_secret) }, binding, { text: 'hi' }, [
    { device_id: 12, encKey: raw(alice.enc_public) }, { device_id: 20, encKey: raw(bob.enc_public) },
  ]);

  it('has exactly the spec\'s seven fields, opens for each recipient, and binds thread, message id and sender user', () => {
    assert.deepEqual(Object.keys(envelope).sort(), ['ciphertext', 'commit', 'keys', 'nonce', 'sender_device', 'signature', 'v']);
    assert.equal(raw(envelope.commit).length, 32);
    const key = unsealKey(sodium, envelope, 20, pairs(bob));
    assert.ok(key);
    assert.deepEqual(decryptEnvelope(sodium, envelope, binding, key), { body: { text: 'hi' } });
    assert.equal(b64(sodium.crypto_generichash(32, new TextEncoder().encode('chatd-e2e-v2-commit'), key)), envelope.commit);
    assert.ok(signatureValid(sodium, envelope, binding, raw(alice.sign_public)));
    for (const other of [{ ...binding, thread_id: 6 }, { ...binding, client_msg_id: 'cm-2' }, { ...binding, sender_user_id: 9 }]) {
      assert.equal(signatureValid(sodium, envelope, other, raw(alice.sign_public)), false);
      assert.equal(decryptEnvelope(sodium, envelope, other, key), 'undecryptable');
    }
  });

  it('a key that does not match the commitment is refused before decrypting (M1)', () => {
    assert.equal(decryptEnvelope(sodium, envelope, binding, sodium.randombytes_buf(32)), 'bad_commit');
  });

  it('opens a v1 envelope from older history (read only)', () => {
    const key = sodium.crypto_aead_xchacha20poly1305_ietf_keygen();
    const nonce = sodium.randombytes_buf(24);
    const ad = signedArray('chatd-e2e-v1', 5, 'old', 12);
    const ciphertext = b64(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(new TextEncoder().encode('{"text":"v1"}'), ad, null, nonce, key));
    const keys = { '20': b64(sodium.crypto_box_seal(key, raw(bob.enc_public))) };
    const signed = signedArray('chatd-e2e-v1', 5, 'old', 12, b64(nonce), ciphertext, [['20', keys['20']]]);
    const v1 = readEnvelope({ v: 1, sender_device: 12, nonce: b64(nonce), ciphertext, keys, signature: b64(sodium.crypto_sign_detached(signed, raw(alice.sign_secret))) });
    assert.ok(v1);
    const old = { ...binding, client_msg_id: 'old' };
    assert.ok(signatureValid(sodium, v1, old, raw(alice.sign_public)));
    assert.deepEqual(decryptEnvelope(sodium, v1, old, unsealKey(sodium, v1, 20, pairs(bob))!), { body: { text: 'v1' } });
  });
});

describe('device messages', () => {
  it('only the addressed device opens one, only from the device that signed it, kind and body bound', () => {
    const from = generateDevice(sodium, 12);
    const to = generateDevice(sodium, 13);
    const payload = sealDeviceMessage(sodium, { user_id: 7, device_id: 12, signSecret: raw(from.sign_secret) }, { device_id: 13, encKey: raw(to.enc_public) }, 'history', { part: 1 });
    const receiver = { user_id: 7, device_id: 13, pairs: [{ public: raw(to.enc_public), secret: raw(to.enc_secret) }] };
    const signKeys = (id: number) => (id === 12 ? raw(from.sign_public) : undefined);
    const opened = openDeviceMessage(sodium, receiver, { from_device: 12, payload }, signKeys);
    assert.deepEqual({ ...opened, msg_id: undefined, sent_at: undefined }, { from_device: 12, kind: 'history', body: { part: 1 }, msg_id: undefined, sent_at: undefined });
    assert.throws(() => openDeviceMessage(sodium, receiver, { from_device: 14, payload }, signKeys), /another/);
    assert.throws(() => openDeviceMessage(sodium, { ...receiver, user_id: 8 }, { from_device: 12, payload }, signKeys), /bad signature/);
    assert.throws(() => openDeviceMessage(sodium, receiver, { from_device: 12, payload }, () => undefined), UntrustedSender);
  });

  it('bind a random message id and the time made into the signed bytes: each is unique, and neither can be changed', () => {
    const from = generateDevice(sodium, 12);
    const to = generateDevice(sodium, 13);
    const sender = { user_id: 7, device_id: 12, signSecret: raw(from.sign_secret) };
    const receiver = { user_id: 7, device_id: 13, pairs: [{ public: raw(to.enc_public), secret: raw(to.enc_secret) }] };
    const signKeys = () => raw(from.sign_public);
    const seal = (at: number) => sealDeviceMessage(sodium, sender, { device_id: 13, encKey: raw(to.enc_public) }, 'history', { part: 1 }, at);
    const [first, second] = [openDeviceMessage(sodium, receiver, { from_device: 12, payload: seal(1000) }, signKeys), openDeviceMessage(sodium, receiver, { from_device: 12, payload: seal(2000) }, signKeys)];
    assert.equal(raw(first.msg_id).length, 16);
    assert.notEqual(first.msg_id, second.msg_id, 'a new id for every message');
    assert.deepEqual([first.sent_at, second.sent_at], [1000, 2000]);
    // Re-sealed with another id or time by whoever could open it (the receiver itself, say): the signature no longer holds.
    const inner = JSON.parse(Buffer.from(sodium.crypto_box_seal_open(raw(seal(1000)), raw(to.enc_public), raw(to.enc_secret))).toString('utf8'));
    for (const changed of [{ ...inner, sent_at: 5000 }, { ...inner, msg_id: b64(sodium.randombytes_buf(16)) }]) {
      const payload = b64(sodium.crypto_box_seal(Buffer.from(JSON.stringify(changed)), raw(to.enc_public)));
      assert.throws(() => openDeviceMessage(sodium, receiver, { from_device: 12, payload }, signKeys), /bad signature/);
    }
    const { msg_id: _id, sent_at: _at, ...older } = inner;
    const payload = b64(sodium.crypto_box_seal(Buffer.from(JSON.stringify(older)), raw(to.enc_public)));
    assert.throws(() => openDeviceMessage(sodium, receiver, { from_device: 12, payload }, signKeys), /msg_id/);
  });
});

describe('safety numbers', () => {
  const a = { user_id: 7, account_key: b64(sodium.crypto_sign_keypair().publicKey) };
  const b = { user_id: 9, account_key: b64(sodium.crypto_sign_keypair().publicKey) };

  it('follow Signal\'s construction: 5200 iterations of SHA-512 over version ‖ key ‖ id, then ‖ key', () => {
    const key = Buffer.from(raw(a.account_key));
    let hash: Buffer = Buffer.concat([Buffer.from([0, 0]), key, Buffer.from('7')]);
    for (let i = 0; i < 5200; i++) hash = createHash('sha512').update(hash).update(key).digest();
    let digits = '';
    for (let offset = 0; offset < 30; offset += 5) digits += String(hash.readUIntBE(offset, 5) % 100000).padStart(5, '0');
    assert.equal(halfNumber(sodium, a), digits);
  });

  it('are the same from both sides, 60 digits, and change with either account key', () => {
    const number = safetyNumber(sodium, a, b);
    assert.equal(number, safetyNumber(sodium, b, a));
    assert.match(number, /^(\d{5} ){11}\d{5}$/);
    assert.ok(number.replace(/ /g, '').startsWith(halfNumber(sodium, a)), 'the lower user id first');
    const b2 = { ...b, account_key: b64(sodium.crypto_sign_keypair().publicKey) };
    assert.notEqual(safetyNumber(sodium, a, b2), number);
  });

  it('the QR payload names both users and keys in ascending id order and matches only itself', () => {
    assert.equal(qrPayload(b, a), `chatd-verify:1:7:${a.account_key}:9:${b.account_key}`);
    assert.ok(qrMatches(qrPayload(a, b), b, a));
    assert.equal(qrMatches(qrPayload(a, { ...b, user_id: 10 }), a, b), false);
  });
});

describe('randomness from Web Crypto', () => {
  it('seals boxes that libsodium opens, with a fresh ephemeral key each time, and random bytes that differ', async () => {
    const libsodium = ((await import('libsodium-wrappers')) as unknown as { default: typeof sodium }).default;
    const recipient = libsodium.crypto_box_keypair();
    const key = sodium.randombytes_buf(32);
    const first = sodium.crypto_box_seal(key, recipient.publicKey);
    const second = sodium.crypto_box_seal(key, recipient.publicKey);
    assert.equal(first.length, 32 + 32 + 16);
    assert.deepEqual(libsodium.crypto_box_seal_open(first, recipient.publicKey, recipient.privateKey), key);
    assert.deepEqual(libsodium.crypto_box_seal_open(second, recipient.publicKey, recipient.privateKey), key);
    assert.notDeepEqual(first.subarray(0, 32), second.subarray(0, 32));
    assert.notDeepEqual(sodium.randombytes_buf(32), sodium.randombytes_buf(32));
    // Sealed to another key, it does not open.
    const other = libsodium.crypto_box_keypair();
    assert.throws(() => libsodium.crypto_box_seal_open(first, other.publicKey, other.privateKey));
  });
});
