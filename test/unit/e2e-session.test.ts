import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateDevice, publication } from '../../src/client/device-keys.js';
import { ClientError } from '../../src/client/errors.js';
import type { MessageJson, ThreadJson } from '../../src/protocol/frames.js';
import { loadSodium } from '../../src/client/sodium.js';
import { MemoryStore } from '../../src/client/store.js';
import { FakeKeyServer, type SeamDevice, seamDevice, sealed, settle } from '../helpers/e2e-seam.js';

/**
 * E2eSession against a scripted server at its seam (review appendix A): the
 * attacks of review C2, H1, H2, M1, M2, H3 and L1, each refused, and the
 * account flow (first device, pending device, approval).
 */

const ALICE = 7, BOB = 9, CAROL = 11, THREAD = 5;
const sodium = await loadSodium();
let seqs = 0;

function message(from: SeamDevice, body: unknown, clientMsgId: string, options: { seq?: number; sender?: number; thread?: number } = {}): MessageJson {
  const seq = options.seq ?? ++seqs;
  return {
    id: seq, thread_id: options.thread ?? THREAD, seq, sender_id: options.sender ?? from.userId, sender_device_id: from.deviceId,
    client_msg_id: clientMsgId, kind: 'e2e', body, created_at: 0,
  };
}

/** Alice (first device 12), Bob (20), Carol (30) sharing thread 5, each with an account key. */
async function threeUsers(): Promise<{ server: FakeKeyServer; alice: SeamDevice; bob: SeamDevice; carol: SeamDevice }> {
  const server = new FakeKeyServer();
  server.threads.set(THREAD, [ALICE, BOB, CAROL]);
  const alice = await seamDevice(server, ALICE, 12);
  const bob = await seamDevice(server, BOB, 20);
  const carol = await seamDevice(server, CAROL, 30);
  // Each learns the others (as a connect after they all exist would).
  for (const device of [alice, bob, carol]) await device.session.connected(device.userId, device.deviceId, device.call);
  await settle();
  for (const device of [alice, bob, carol]) for (const list of [device.keys, device.errors, device.requests]) list.length = 0;
  return { server, alice, bob, carol };
}

/** Keys for `deviceId` that the server made itself (it holds the secrets), published under `userId`. */
function serverMadeKeys(userId: number, deviceId: number, accountSignature: string | null = null) {
  const secrets = generateDevice(sodium, deviceId);
  return { secrets, keys: { user_id: userId, device_id: deviceId, ...publication(sodium, secrets, userId, undefined), account_signature: accountSignature, revoked: false } };
}

describe('e2e session: the account key', () => {
  it('the first device makes and publishes the account key and certifies itself', async () => {
    const server = new FakeKeyServer();
    const alice = await seamDevice(server, ALICE, 12);
    assert.deepEqual(alice.standings, [{ state: 'created' }]);
    const account = server.accounts.get(ALICE);
    assert.ok(account);
    assert.equal((await alice.store.load()).e2e.account?.account_key, account.account_key, 'stored before it was published');
    assert.equal(typeof server.devices.get(12)?.account_signature, 'string');
  });

  it('a second device is pending, gets nothing sealed, and is approved by the first with the fingerprint it shows', async () => {
    const server = new FakeKeyServer();
    server.threads.set(THREAD, [ALICE]);
    const first = await seamDevice(server, ALICE, 12);
    const second = await seamDevice(server, ALICE, 13);
    assert.deepEqual(second.standings, [{ state: 'pending' }]);
    assert.equal(server.devices.get(13)?.account_signature, null);
    await settle();
    assert.deepEqual(first.requests.map((request) => request.device_id), [13], 'device_request on the first device');
    assert.deepEqual(Object.keys((await sealed(first, THREAD, 'before', { text: 'before approval' }) as { keys: object }).keys), ['12']);
    // A wrong code is refused; nothing changes.
    await assert.rejects(first.session.approveDevice(13, '00000 00000'), (error: ClientError) => error.code === 'invalid_field');
    assert.equal(server.devices.get(13)?.account_signature, null);
    await first.session.approveDevice(13, second.session.ownFingerprint());
    await settle();
    await settle();
    assert.deepEqual(second.standings.at(-1), { state: 'approved' });
    assert.equal((await second.store.load()).e2e.account?.account_secret !== undefined, true, 'the new device holds the account key');
    const after = await sealed(first, THREAD, 'after', { text: 'after approval' }) as { keys: object };
    assert.deepEqual(Object.keys(after.keys).sort(), ['12', '13']);
    const opened = await second.session.open(message(first, after, 'after'));
    assert.equal(opened.e2e?.status, 'ok');
    assert.deepEqual(opened.body, { text: 'after approval' });
    assert.deepEqual((await first.session.devices()).map((d) => [d.device_id, d.state]), [[12, 'this'], [13, 'approved']]);
  });

  it('an account key grant from a device the account key did not approve is refused', async () => {
    const server = new FakeKeyServer();
    await seamDevice(server, ALICE, 12);
    const pending = await seamDevice(server, ALICE, 13);
    // The server forges a grant from its own ghost device 66 (no certificate).
    const ghost = serverMadeKeys(ALICE, 66);
    server.devices.set(66, ghost.keys);
    await pending.session.connected(ALICE, 13, pending.call);
    const { sealDeviceMessage } = await import('../../src/client/device-message.js');
    const payload = sealDeviceMessage(sodium, { user_id: ALICE, device_id: 66, signSecret: sodium.from_base64(ghost.secrets.sign_secret, 1) },
      { device_id: 13, encKey: sodium.from_base64((await pending.store.load()).e2e.deviceSecrets!.enc_public, 1) }, 'account_key', { account_key: server.accounts.get(ALICE)!.account_key, account_secret: ghost.secrets.sign_secret + ghost.secrets.sign_secret.slice(0, 0) });
    pending.session.event({ type: 'device_message', message: { id: 99, from_device: 66, payload, created_at: 0 } });
    await settle();
    assert.deepEqual(pending.standings, [{ state: 'pending' }]);
    assert.ok(pending.errors.some((error) => error instanceof ClientError && /device message 99/.test(error.message)));
  });
});

describe('e2e session: device messages and races', () => {
  it('two first devices at once: the one whose account key lost the race becomes pending', async () => {
    const server = new FakeKeyServer();
    await seamDevice(server, ALICE, 12);
    let hidden = false;
    // Device 13's first keys_get was answered before device 12 published its account key.
    server.tamper = (reply) => (hidden ? reply : ((hidden = true), { ...reply, accounts: [] }));
    const late = await seamDevice(server, ALICE, 13);
    assert.deepEqual(late.standings, [{ state: 'pending' }]);
    assert.equal((await late.store.load()).e2e.account?.account_key, server.accounts.get(ALICE)?.account_key, 'the winner\'s key, pinned, without a secret');
    assert.equal((await late.store.load()).e2e.account?.account_secret, undefined);
  });

  it('a history device message waits in the queue until a history module takes it, then is acked', async () => {
    const server = new FakeKeyServer();
    const first = await seamDevice(server, ALICE, 12);
    const second = await seamDevice(server, ALICE, 13);
    await settle();
    await first.session.approveDevice(13, second.session.ownFingerprint());
    await settle();
    await settle();
    const host = first.session.attachHistory({ receive: async () => {} });
    await host.sendDeviceMessage(13, { grant_id: 'g', part: 1, parts: 1, keys: [] });
    await settle();
    assert.equal(server.queues.get(13)?.length, 1, 'nobody handles history yet: it stays queued');
    const received: Array<[number, unknown]> = [];
    second.session.attachHistory({ receive: async (from, body) => { received.push([from, body]); } });
    await second.session.connected(ALICE, 13, second.call);
    assert.deepEqual(received, [[12, { grant_id: 'g', part: 1, parts: 1, keys: [] }]]);
    assert.equal(server.queues.get(13)?.length, 0, 'acked');
    await assert.rejects(host.sendDeviceMessage(99, {}), (error: ClientError) => error.code === 'not_found');
  });

  it('history keys open a message that was not sealed to this device, via history; messageKey gives K only for ok messages', async () => {
    const server = new FakeKeyServer();
    server.threads.set(THREAD, [ALICE]);
    const first = await seamDevice(server, ALICE, 12);
    const envelope = await sealed(first, THREAD, 'old', { text: 'before the new phone' });
    const second = await seamDevice(server, ALICE, 13);
    await settle();
    await first.session.approveDevice(13, second.session.ownFingerprint());
    await settle();
    await settle();
    const old = message(first, envelope, 'old', { seq: 700 });
    assert.equal((await second.session.open(old)).e2e?.status, 'undecryptable');
    const key = first.session.attachHistory({ receive: async () => {} }).messageKey(old);
    assert.ok(key);
    const secondHost = second.session.attachHistory({ receive: async () => {} });
    assert.equal(secondHost.messageKey(old), undefined);
    await secondHost.addHistoryKeys([[THREAD, 700, key]]);
    const opened = await second.session.open(old);
    assert.deepEqual([opened.e2e?.status, opened.e2e?.via, opened.body], ['ok', 'history', { text: 'before the new phone' }]);
    await secondHost.addHistoryKeys([[THREAD, 701, key]]);
    assert.equal((await second.session.open({ ...old, seq: 701, id: 701 })).e2e?.status, 'replayed', 'a key for another seq does not make a copy ok');
  });
});

describe('e2e session: a malicious server', () => {
  it('C2: keys the server reports for this device are not used; key_mismatch, nothing sealed to them', async () => {
    const { server, carol } = await threeUsers();
    const substitute = serverMadeKeys(CAROL, 30);
    server.tamper = (reply) => ({ ...reply, devices: reply.devices.map((d) => (d.device_id === 30 ? substitute.keys : d)) });
    carol.session.event({ type: 'keys_changed', ...substitute.keys });
    assert.ok(carol.errors.some((error) => error instanceof ClientError && error.code === 'key_mismatch'));
    const envelope = await sealed(carol, THREAD, 'c2', { text: "carol's secret" }) as { keys: Record<string, string> };
    const { unsealKey } = await import('../../src/client/envelope.js');
    const serverPair = { public: sodium.from_base64(substitute.secrets.enc_public, 1), secret: sodium.from_base64(substitute.secrets.enc_secret, 1) };
    assert.equal(unsealKey(sodium, envelope as never, 30, [serverPair]), undefined, 'the server cannot open carol\'s own copy');
    assert.equal(carol.keys.length, 0);
  });

  it('after a rotation, a late echo of this device\'s own earlier keys is no alarm; keys it never had are', async () => {
    const { server, carol } = await threeUsers();
    const before = server.devices.get(30)!;
    await carol.session.rotate();
    carol.session.event({ type: 'keys_changed', ...server.devices.get(30)! });
    carol.session.event({ type: 'keys_changed', ...before });
    assert.deepEqual(carol.errors, []);
    carol.session.event({ type: 'keys_changed', ...serverMadeKeys(CAROL, 30).keys });
    assert.deepEqual(carol.errors.map((error) => (error as ClientError).code), ['key_mismatch']);
  });

  it('C1: a store that lost its secrets does not make a new identity for a device the server knows', async () => {
    const { server } = await threeUsers();
    const amnesiac = await seamDevice(server, CAROL, 30, { store: new MemoryStore(), connect: false });
    await assert.rejects(amnesiac.session.connected(CAROL, 30, amnesiac.call), (error: ClientError) => error.code === 'key_mismatch');
    assert.equal((await amnesiac.store.load()).e2e.deviceSecrets, undefined);
  });

  it('H1: a device relabelled to another user is refused, and its messages under the new owner are bad_signature', async () => {
    const { server, alice, carol } = await threeUsers();
    const envelope = await sealed(alice, THREAD, 'h1', { text: 'I agree' });
    // Alice's keys under Bob's name: her own signature names her user, so the report does not verify and is ignored.
    carol.session.event({ type: 'keys_changed', ...server.devices.get(12)!, user_id: BOB });
    assert.ok(carol.errors.some((error) => error instanceof ClientError && error.code === 'bad_reply'));
    // Keys of the server's own for device 12, under Bob: a known device with another owner and identity is refused.
    carol.session.event({ type: 'keys_changed', ...serverMadeKeys(BOB, 12).keys });
    assert.deepEqual(carol.keys.map((k) => [k.device_id, k.reason, k.trusted]), [[12, 'changed', false]]);
    const shown = await carol.session.open(message(alice, envelope, 'h1', { sender: BOB }));
    assert.equal(shown.e2e?.status, 'bad_signature');
    assert.notDeepEqual(shown.body, { text: 'I agree' });
    assert.equal((await carol.session.open(message(alice, envelope, 'h1', { seq: 900 }))).e2e?.status, 'ok', 'under its pinned owner it still reads');
  });

  it('H2: a ghost device without an account certificate gets nothing, and the server insisting fails the send with untrusted_devices', async () => {
    const { server, bob, carol } = await threeUsers();
    const ghost = serverMadeKeys(BOB, 99);
    server.devices.set(99, ghost.keys);
    await carol.session.refreshThread(THREAD);
    const envelope = await sealed(carol, THREAD, 'h2', { text: 'for bob only' }) as { keys: object };
    assert.deepEqual(Object.keys(envelope.keys).sort(), ['12', '20', '30']);
    assert.equal(carol.keys.length, 0, 'an uncertified device is no news');
    const refusal = new ClientError('devices_changed', 'stale', false, undefined, undefined, { missing_devices: [99] });
    await assert.rejects(carol.session.refreshThread(THREAD, refusal), (error: ClientError) => error.code === 'untrusted_devices');
    assert.ok(carol.errors.some((error) => error instanceof ClientError && error.code === 'untrusted_devices'));
    // A certificate made with a key the server invented is no better.
    const fakeAccount = sodium.crypto_sign_keypair();
    const { certifyDevice } = await import('../../src/client/device-keys.js');
    server.devices.set(99, { ...ghost.keys, account_signature: certifyDevice(sodium, ghost.keys, sodium.to_base64(fakeAccount.privateKey, 1)) });
    await carol.session.refreshThread(THREAD);
    assert.deepEqual(Object.keys((await sealed(carol, THREAD, 'h2b', { text: 'still' }) as { keys: object }).keys).sort(), ['12', '20', '30']);
    void bob;
  });

  it('M1: an envelope whose sealed key does not match its commitment is bad_signature, never a second body', async () => {
    const { alice, bob } = await threeUsers();
    const envelope = await sealed(alice, THREAD, 'm1', { text: 'YES' }) as Record<string, unknown> & { keys: Record<string, string> };
    // The sender seals another K to bob (re-signing, as a malicious sender can): the commitment gives it away.
    const { sealEnvelope } = await import('../../src/client/envelope.js');
    const bobEnc = sodium.from_base64((await bob.store.load()).e2e.deviceSecrets!.enc_public, 1);
    const other = sealEnvelope(sodium, { device_id: 12, signSecret: sodium.from_base64((await alice.store.load()).e2e.deviceSecrets!.sign_secret, 1) },
      { thread_id: THREAD, client_msg_id: 'm1', sender_user_id: ALICE }, { text: 'NO' }, [{ device_id: 20, encKey: bobEnc }]);
    const { signedArray } = await import('../../src/client/e2e-bytes.js');
    const keys = { ...envelope.keys, '20': other.keys['20']! };
    const unsigned = { ...envelope, keys };
    const bytes = signedArray('chatd-e2e-v2', THREAD, 'm1', ALICE, 12, envelope.nonce, envelope.commit, envelope.ciphertext, Object.keys(keys).sort().map((id) => [id, keys[id as keyof typeof keys]]));
    const signature = sodium.to_base64(sodium.crypto_sign_detached(bytes, sodium.from_base64((await alice.store.load()).e2e.deviceSecrets!.sign_secret, 1)), 1);
    const opened = await bob.session.open(message(alice, { ...unsigned, signature }, 'm1'));
    assert.equal(opened.e2e?.status, 'bad_signature');
  });

  it('M2: a rolled-back counter and a replaced identity key are refused; the pinned keys stay and are sealed to', async () => {
    const { server, bob, carol } = await threeUsers();
    const original = server.devices.get(20)!;
    await bob.session.rotate();
    await settle();
    assert.deepEqual(carol.keys.map((k) => [k.device_id, k.reason, k.trusted]), [[20, 'rotated', true]]);
    const rotated = server.devices.get(20)!;
    // The server serves the old, validly signed key again (counter 1 < 2).
    carol.session.event({ type: 'keys_changed', ...original });
    // …and then a new identity for device 20.
    const replaced = serverMadeKeys(BOB, 20);
    carol.session.event({ type: 'keys_changed', ...replaced.keys });
    assert.deepEqual(carol.keys.slice(1).map((k) => [k.device_id, k.reason, k.trusted]), [[20, 'changed', false], [20, 'changed', false]]);
    assert.equal((await carol.session.fingerprints(BOB))[0]?.mismatch, true);
    server.tamper = (reply) => ({ ...reply, devices: reply.devices.map((d) => (d.device_id === 20 ? replaced.keys : d)) });
    const envelope = await sealed(carol, THREAD, 'm2', { text: 'x' }) as { keys: object };
    assert.deepEqual(Object.keys(envelope.keys).sort(), ['12', '30'], 'nothing sealed to a device whose report was refused');
    server.tamper = (reply) => reply;
    carol.session.event({ type: 'keys_changed', ...rotated });
    const back = await sealed(carol, THREAD, 'm2b', { text: 'y' });
    assert.equal((await bob.session.open(message(carol, back, 'm2b'))).e2e?.status, 'ok', 'the true keys are taken again');
  });

  it('L1: the same signed message at a second seq is replayed', async () => {
    const { alice, bob } = await threeUsers();
    const envelope = await sealed(alice, THREAD, 'l1', { text: 'pay 10' });
    assert.equal((await bob.session.open(message(alice, envelope, 'l1', { seq: 500 }))).e2e?.status, 'ok');
    assert.equal((await bob.session.open(message(alice, envelope, 'l1', { seq: 500 }))).e2e?.status, 'ok', 'the same seq again is the same message');
    const replay = await bob.session.open(message(alice, envelope, 'l1', { seq: 501 }));
    assert.equal(replay.e2e?.status, 'replayed');
    assert.notDeepEqual(replay.body, { text: 'pay 10' });
  });

  it('L2: messages of a revoked device still verify; nothing new is sealed to it', async () => {
    const { server, alice, carol } = await threeUsers();
    const envelope = await sealed(alice, THREAD, 'l2', { text: 'before logout' });
    server.devices.set(12, { ...server.devices.get(12)!, revoked: true });
    carol.session.event({ type: 'keys_changed', ...server.devices.get(12)! });
    assert.deepEqual(carol.keys.map((k) => [k.device_id, k.reason]), [[12, 'removed']]);
    assert.equal((await carol.session.open(message(alice, envelope, 'l2'))).e2e?.status, 'ok');
    assert.deepEqual(Object.keys((await sealed(carol, THREAD, 'l2b', {}) as { keys: object }).keys).sort(), ['20', '30']);
  });

  it('a pinned device the server stops listing is removed and no longer sealed to', async () => {
    const { server, carol } = await threeUsers();
    server.devices.delete(20);
    await carol.session.refreshThread(THREAD);
    assert.deepEqual(carol.keys.map((k) => [k.device_id, k.reason]), [[20, 'removed']]);
    assert.deepEqual(Object.keys((await sealed(carol, THREAD, 'gone', {}) as { keys: object }).keys).sort(), ['12', '30']);
    assert.deepEqual((await carol.session.fingerprints(BOB)).map((d) => d.device_id), [20], 'the pin stays, for its history');
  });

  it('a message from an uncertified device is untrusted_sender', async () => {
    const { server, carol } = await threeUsers();
    const ghost = serverMadeKeys(BOB, 99);
    server.devices.set(99, ghost.keys);
    const { sealEnvelope } = await import('../../src/client/envelope.js');
    const envelope = sealEnvelope(sodium, { device_id: 99, signSecret: sodium.from_base64(ghost.secrets.sign_secret, 1) },
      { thread_id: THREAD, client_msg_id: 'g', sender_user_id: BOB }, { text: 'from the ghost' }, []);
    const opened = await carol.session.open({ id: 1, thread_id: THREAD, seq: 1, sender_id: BOB, sender_device_id: 99, client_msg_id: 'g', kind: 'e2e', body: envelope, created_at: 0 });
    assert.equal(opened.e2e?.status, 'untrusted_sender');
  });
});

describe('e2e session: identities', () => {
  it('identity events on first sight; an unverified contact\'s new account key is taken with a changed event', async () => {
    const { server, carol } = await threeUsers();
    assert.deepEqual(carol.identities.map((i) => [i.user_id, i.reason, i.held]).sort(), [[ALICE, 'new', false], [BOB, 'new', false]]);
    assert.match(carol.identities[0]!.safety_number, /^(\d{5} ){11}\d{5}$/);
    const before = await carol.session.safetyNumber(BOB);
    const replacement = sodium.crypto_sign_keypair();
    const { accountSignature } = await import('../../src/client/device-keys.js');
    const account = { user_id: BOB, account_key: sodium.to_base64(replacement.publicKey, 1), account_secret: sodium.to_base64(replacement.privateKey, 1) };
    const changed = { user_id: BOB, account_key: account.account_key, signature: accountSignature(sodium, account) };
    server.accounts.set(BOB, changed);
    carol.session.event({ type: 'account_changed', ...changed });
    assert.deepEqual(carol.identities.at(-1) && [carol.identities.at(-1)!.reason, carol.identities.at(-1)!.held], ['changed', false]);
    const after = await carol.session.safetyNumber(BOB);
    assert.notEqual(after.number, before.number);
    // Bob's device is certified by the old key only: nothing is sealed to it now.
    assert.deepEqual(Object.keys((await sealed(carol, THREAD, 'i1', {}) as { keys: object }).keys).sort(), ['12', '30']);
  });

  it('a verified contact\'s changed account key holds sends until acceptIdentity; send does not fail', async () => {
    const { server, carol } = await threeUsers();
    await carol.session.markVerified(BOB, true);
    await sealed(carol, THREAD, 'warm', {});
    const replacement = sodium.crypto_sign_keypair();
    const { accountSignature } = await import('../../src/client/device-keys.js');
    const account = { user_id: BOB, account_key: sodium.to_base64(replacement.publicKey, 1), account_secret: sodium.to_base64(replacement.privateKey, 1) };
    const changed = { user_id: BOB, account_key: account.account_key, signature: accountSignature(sodium, account) };
    server.accounts.set(BOB, changed);
    carol.session.event({ type: 'account_changed', ...changed });
    assert.deepEqual([carol.identities.at(-1)!.reason, carol.identities.at(-1)!.held, carol.identities.at(-1)!.verified], ['changed', true, true]);
    const entry = { client_msg_id: 'held', thread_id: THREAD, kind: 'e2e' as const, body: { text: 'wait' }, created_at: 0 };
    const first = carol.session.seal(entry);
    assert.ok('wait' in first, 'held');
    let released = false;
    void first.wait.then(() => { released = true; });
    await settle();
    assert.equal(released, false);
    await carol.session.acceptIdentity(BOB);
    await settle();
    assert.equal(released, true);
    assert.equal((await carol.session.safetyNumber(BOB)).verified, false, 'verified again only by comparing again');
    assert.ok('body' in carol.session.seal(entry));
  });

  it('safety numbers are equal on both sides; the QR code verifies', async () => {
    const { alice, bob } = await threeUsers();
    const fromAlice = await alice.session.safetyNumber(BOB);
    const fromBob = await bob.session.safetyNumber(ALICE);
    assert.equal(fromAlice.number, fromBob.number);
    assert.match(fromAlice.number, /^(\d{5} ){11}\d{5}$/);
    assert.equal(fromAlice.qr, fromBob.qr);
    assert.equal(await alice.session.verifyQr(BOB, fromBob.qr.replace(/:[^:]+$/, ':AAAA')), false);
    assert.equal((await alice.session.safetyNumber(BOB)).verified, false);
    assert.equal(await alice.session.verifyQr(BOB, fromBob.qr), true);
    assert.equal((await alice.session.safetyNumber(BOB)).verified, true);
  });
});

describe('e2e session: sticky encryption (H3)', () => {
  const thread = (e2e: boolean): ThreadJson => ({
    id: THREAD, kind: 'group', title: 't', peer: null, created_at: 0, last_seq: 0, last_message: null, role: 'member', member: true,
    left_seq: null, read_seq: 0, unread: 0, muted: false, label: null, member_count: 3, e2e_required: e2e,
  });

  it('a thread once required stays encrypted when the server drops the flag, with an encryption_downgrade alarm', async () => {
    const { carol } = await threeUsers();
    carol.session.threadSeen(thread(true));
    carol.session.threadSeen(thread(false));
    assert.equal(carol.session.mustEncrypt(THREAD, thread(false)), true);
    assert.deepEqual(carol.errors.filter((e) => e instanceof ClientError).map((e) => (e as ClientError).code), ['encryption_downgrade']);
    assert.deepEqual((await carol.store.load()).e2e.e2eThreads, { [THREAD]: 'required' });
  });

  it('a thread with one encrypted message stays encrypted; with always, every thread is', async () => {
    const { alice, carol } = await threeUsers();
    assert.equal(carol.session.mustEncrypt(THREAD, thread(false)), false);
    await carol.session.open(message(alice, await sealed(alice, THREAD, 'sticky', { text: 'x' }), 'sticky'));
    assert.equal(carol.session.mustEncrypt(THREAD, thread(false)), true);
    const server = new FakeKeyServer();
    const always = await seamDevice(server, 40, 41, { always: true });
    assert.equal(always.session.mustEncrypt(77, undefined), true);
  });
});
