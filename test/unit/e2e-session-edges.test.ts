import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PREVIOUS_ENC, generateAccount, generateDevice, publication } from '../../src/client/device-keys.js';
import { signedArray } from '../../src/client/e2e-bytes.js';
import type { Call } from '../../src/client/e2e.js';
import { ClientError } from '../../src/client/errors.js';
import type { RequestJson } from '../../src/client/requests.js';
import { MemoryStore } from '../../src/client/store.js';
import { loadSodium } from '../../src/client/sodium.js';
import type { MessageJson } from '../../src/protocol/frames.js';
import { FakeKeyServer, type SeamDevice, seamDevice, sealed, settle } from '../helpers/e2e-seam.js';

/**
 * E2eSession at its edges, at the scripted seam (where a first review of
 * protocol 2 found it weak): the verified sender device, protocol 1 history
 * marked legacy, a transient failure that is no unknown_sender, a verified
 * contact's new devices holding a send, a dropped account_publish, a store
 * from before a rotation.
 */

const ALICE = 7, BOB = 9, THREAD = 5;
const sodium = await loadSodium();
const b64 = (bytes: Uint8Array): string => sodium.to_base64(bytes, 1);
const raw = (text: string): Uint8Array => sodium.from_base64(text, 1);
let seqs = 0;

function message(from: SeamDevice, body: unknown, clientMsgId: string, options: { senderDevice?: number } = {}): MessageJson {
  const seq = ++seqs;
  return {
    id: seq, thread_id: THREAD, seq, sender_id: from.userId, sender_device_id: options.senderDevice ?? from.deviceId,
    client_msg_id: clientMsgId, kind: 'e2e', body, created_at: 0,
  };
}

async function twoUsers(): Promise<{ server: FakeKeyServer; alice: SeamDevice; bob: SeamDevice }> {
  const server = new FakeKeyServer();
  server.threads.set(THREAD, [ALICE, BOB]);
  const alice = await seamDevice(server, ALICE, 12);
  const bob = await seamDevice(server, BOB, 20);
  for (const device of [alice, bob]) await device.session.connected(device.userId, device.deviceId, device.call);
  await settle();
  for (const device of [alice, bob]) for (const list of [device.keys, device.errors, device.requests, device.identities]) list.length = 0;
  return { server, alice, bob };
}

describe('the encryption session at its edges', () => {
  it('an e2e message carries the verified sender device, not the server\'s label', async () => {
    const { alice, bob } = await twoUsers();
    const envelope = await sealed(alice, THREAD, 'l5', { text: 'hi' });
    const opened = await bob.session.open(message(alice, envelope, 'l5', { senderDevice: 999 }));
    assert.equal(opened.e2e?.status, 'ok');
    assert.equal(opened.sender_device_id, 12);
    assert.equal(opened.e2e?.legacy, undefined);
  });

  it('a protocol 1 envelope from older history opens, marked legacy (no key commitment)', async () => {
    const { alice, bob } = await twoUsers();
    const aliceSecrets = (await alice.store.load()).e2e.deviceSecrets!;
    const bobSecrets = (await bob.store.load()).e2e.deviceSecrets!;
    const key = sodium.crypto_aead_xchacha20poly1305_ietf_keygen();
    const nonce = sodium.randombytes_buf(24);
    const ad = signedArray('chatd-e2e-v1', THREAD, 'old', 12);
    const ciphertext = b64(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(new TextEncoder().encode('{"text":"v1"}'), ad, null, nonce, key));
    const keys = { '20': b64(sodium.crypto_box_seal(key, raw(bobSecrets.enc_public))) };
    const signed = signedArray('chatd-e2e-v1', THREAD, 'old', 12, b64(nonce), ciphertext, [['20', keys['20']]]);
    const v1 = { v: 1, sender_device: 12, nonce: b64(nonce), ciphertext, keys, signature: b64(sodium.crypto_sign_detached(signed, raw(aliceSecrets.sign_secret))) };
    const opened = await bob.session.open(message(alice, v1, 'old'));
    assert.equal(opened.e2e?.status, 'ok');
    assert.deepEqual(opened.body, { text: 'v1' });
    assert.equal(opened.e2e?.legacy, true);
  });

  it('a verified contact\'s new device under a changed account key, found through devices_changed, holds the send', async () => {
    const { server, alice } = await twoUsers();
    await alice.session.markVerified(BOB, true);
    await sealed(alice, THREAD, 'warm', {});
    // Bob's account key is reset and a new device certified by it, without alice being told (no events).
    const { account, signature } = generateAccount(sodium, BOB);
    server.accounts.set(BOB, { user_id: BOB, account_key: account.account_key, signature });
    const secrets = generateDevice(sodium, 21);
    server.devices.set(21, { user_id: BOB, device_id: 21, ...publication(sodium, secrets, BOB, account), revoked: false });
    const refusal = new ClientError('devices_changed', 'stale', false, undefined, undefined, { missing_devices: [21] });
    await alice.session.refreshThread(THREAD, refusal);
    assert.equal(alice.identities.at(-1)?.held, true);
    const entry = { client_msg_id: 'held', thread_id: THREAD, kind: 'e2e' as const, body: { text: 'wait' }, created_at: 0 };
    const first = alice.session.seal(entry);
    assert.ok('wait' in first, 'held, not failed');
    await alice.session.acceptIdentity(BOB);
    await first.wait;
    const body = alice.session.seal(entry);
    assert.ok('body' in body);
    assert.deepEqual(Object.keys((body.body as { keys: object }).keys).sort(), ['12', '21']);
  });

  it('a first device whose account_publish was dropped while another device won waits, pending, and takes the winner\'s grant', async () => {
    const server = new FakeKeyServer();
    server.threads.set(THREAD, [ALICE]);
    const loser = await seamDevice(server, ALICE, 13, { connect: false });
    const dropping: Call = (async (request: RequestJson) => {
      if (request.type === 'account_publish') throw new ClientError('disconnected', 'connection ended', true);
      return loser.call(request as never);
    }) as Call;
    await assert.rejects(loser.session.connected(ALICE, 13, dropping), { code: 'disconnected' });
    assert.equal((await loser.store.load()).e2e.account?.creating, true, 'marked until the server has it');
    const winner = await seamDevice(server, ALICE, 12);
    assert.deepEqual(winner.standings, [{ state: 'created' }]);
    await loser.session.connected(ALICE, 13, loser.call);
    assert.deepEqual(loser.standings, [{ state: 'pending' }]);
    assert.deepEqual(loser.errors.filter((e) => e instanceof ClientError && e.code === 'account_reset'), [], 'no reset alarm: nothing was reset');
    assert.equal((await loser.store.load()).e2e.account?.account_key, server.accounts.get(ALICE)?.account_key);
    await settle();
    await winner.session.approveDevice(13, loser.session.ownFingerprint());
    await settle();
    await settle();
    assert.deepEqual(loser.standings.at(-1), { state: 'approved' });
  });

  it('a dropped account_publish whose key did reach the server is finished at the next connect: created', async () => {
    const server = new FakeKeyServer();
    const device = await seamDevice(server, ALICE, 12, { connect: false });
    const lostReply: Call = (async (request: RequestJson) => {
      const reply = await device.call(request as never);
      if (request.type === 'account_publish') throw new ClientError('timeout', 'no reply', true);
      return reply;
    }) as Call;
    await assert.rejects(device.session.connected(ALICE, 12, lostReply));
    await device.session.connected(ALICE, 12, device.call);
    assert.deepEqual(device.standings, [{ state: 'created' }]);
    const account = (await device.store.load()).e2e.account!;
    assert.equal(account.creating, undefined);
    assert.equal(account.account_key, server.accounts.get(ALICE)?.account_key);
    assert.equal(typeof server.devices.get(12)?.account_signature, 'string');
  });

  it('a grant dropped before the new device fetched it (the server\'s TTL) is sent again by approveDevice again', async () => {
    const server = new FakeKeyServer();
    const first = await seamDevice(server, ALICE, 12);
    const added = await seamDevice(server, ALICE, 13);
    const away = added.session.event.bind(added.session);
    added.session.event = () => {};
    await first.session.approveDevice(13, added.session.ownFingerprint());
    await settle();
    // The server took the approval, then dropped the queued grant unread (past e2e.device_message_ttl_days).
    server.queues.delete(13);
    added.session.event = away;
    await added.session.connected(ALICE, 13, added.call);
    assert.deepEqual(added.standings.at(-1), { state: 'pending' }, 'certified on the server, but without the key');
    await first.session.approveDevice(13, added.session.ownFingerprint());
    await settle();
    await settle();
    assert.deepEqual(added.standings.at(-1), { state: 'approved' });
    assert.equal((await added.store.load()).e2e.account!.account_secret, (await first.store.load()).e2e.account!.account_secret);
  });

  it('a server that makes the device rotate at every connect cannot grow its old keys past MAX_PREVIOUS_ENC; an absurd counter is refused as key_mismatch', async () => {
    const { server, bob } = await twoUsers();
    // The server reports the device's own counter with another encryption key: the device rotates past it, each connect.
    server.tamper = (reply) => ({ ...reply, devices: reply.devices.map((keys) => (keys.device_id === 20 ? { ...keys, enc_key: generateDevice(sodium, 20).enc_public } : keys)) });
    for (let i = 0; i < MAX_PREVIOUS_ENC + 3; i++) await bob.session.connected(BOB, 20, bob.call);
    const rotated = (await bob.store.load()).e2e.deviceSecrets!;
    assert.ok(rotated.counter > MAX_PREVIOUS_ENC + 3, 'it rotated at each connect');
    assert.equal(rotated.previous_enc?.length, MAX_PREVIOUS_ENC);
    // A counter no rotation reaches: refused, nothing rotated, nothing published.
    server.tamper = (reply) => ({ ...reply, devices: reply.devices.map((keys) => (keys.device_id === 20 ? { ...keys, counter: 2 ** 31 + 1 } : keys)) });
    const published = server.requests.filter((entry) => entry.request.type === 'keys_publish').length;
    await assert.rejects(bob.session.connected(BOB, 20, bob.call), (error: ClientError) => error.code === 'key_mismatch' && !error.retryable && /counter 2147483649/.test(error.message));
    assert.deepEqual((await bob.store.load()).e2e.deviceSecrets, rotated);
    assert.equal(server.requests.filter((entry) => entry.request.type === 'keys_publish').length, published);
  });

  it('a store restored from before a rotation rotates past the server\'s counter, under the same identity', async () => {
    const { server, bob } = await twoUsers();
    const backup = (await bob.store.load()).e2e;
    await bob.session.rotate();
    await bob.session.rotate();
    assert.equal(server.devices.get(20)?.counter, 3);
    const restored = new MemoryStore();
    await restored.setE2e('deviceSecrets', backup.deviceSecrets!);
    await restored.setE2e('account', backup.account!);
    const again = await seamDevice(server, BOB, 20, { store: restored, connect: false });
    const published: number[] = [];
    const strict: Call = (async (request: RequestJson) => {
      // The real server's rule: a counter lower than stored, or equal with another key, is a rollback.
      if (request.type === 'keys_publish') {
        const stored = server.devices.get(20)!;
        if (request.counter < stored.counter || (request.counter === stored.counter && request.enc_key !== stored.enc_key)) {
          throw new ClientError('key_conflict', 'rollback', false);
        }
        published.push(request.counter);
      }
      return again.call(request as never);
    }) as Call;
    await again.session.connected(BOB, 20, strict);
    assert.deepEqual(published, [4]);
    const secrets = (await restored.load()).e2e.deviceSecrets!;
    assert.equal(secrets.counter, 4);
    assert.equal(secrets.sign_public, backup.deviceSecrets!.sign_public, 'the identity stays');
    assert.equal(again.session.ownFingerprint(), bob.session.ownFingerprint());
  });
});
