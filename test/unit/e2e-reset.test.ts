import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accountSignature, generateAccount, generateDevice, isCertified, publication } from '../../src/client/device-keys.js';
import { sealDeviceMessage } from '../../src/client/device-message.js';
import { ClientError } from '../../src/client/errors.js';
import type { MessageJson } from '../../src/protocol/frames.js';
import { loadSodium } from '../../src/client/sodium.js';
import { parseStoreDocument } from '../../src/client/store.js';
import { FakeKeyServer, type SeamDevice, seamDevice, sealed, settle } from '../helpers/e2e-seam.js';

/**
 * Resetting the account key (docs/e2e.md, "Resetting the account key"), at
 * E2eSession's seam: the device that resets stays approved under the new key;
 * the user's other devices drop the old key, are pending with an
 * `account_reset` alarm and take the new key only through a grant from a
 * device certified by it; contacts see `identity` `changed` and trust the
 * re-certified devices again.
 */

const ALICE = 7, BOB = 9, THREAD = 5;
const sodium = await loadSodium();
let seqs = 0;

function message(from: SeamDevice, body: unknown, clientMsgId: string): MessageJson {
  const seq = ++seqs;
  return { id: seq, thread_id: THREAD, seq, sender_id: from.userId, sender_device_id: from.deviceId, client_msg_id: clientMsgId, kind: 'e2e', body, created_at: 0 };
}

const codes = (device: SeamDevice): string[] => device.errors.map((error) => (error instanceof ClientError ? error.code : String(error)));

/** Alice with two approved devices (12 made the account key, 13 approved by it) and Bob (20), sharing thread 5. */
async function twoDevices(): Promise<{ server: FakeKeyServer; a12: SeamDevice; a13: SeamDevice; bob: SeamDevice }> {
  const server = new FakeKeyServer();
  server.threads.set(THREAD, [ALICE, BOB]);
  const a12 = await seamDevice(server, ALICE, 12);
  const a13 = await seamDevice(server, ALICE, 13);
  const bob = await seamDevice(server, BOB, 20);
  await settle();
  await a12.session.approveDevice(13, a13.session.ownFingerprint());
  await settle();
  await settle();
  assert.deepEqual(a13.standings.at(-1), { state: 'approved' });
  for (const device of [a12, a13, bob]) await device.session.connected(device.userId, device.deviceId, device.call);
  await settle();
  for (const device of [a12, a13, bob]) for (const list of [device.keys, device.errors, device.requests, device.identities, device.standings]) list.length = 0;
  return { server, a12, a13, bob };
}

const sealedTo = async (device: SeamDevice, id: string): Promise<string[]> => Object.keys((await sealed(device, THREAD, id, { text: id }) as { keys: object }).keys).sort();

/** A grant from device `from` (its signing secret) to `to`, sent through the server as device `from` would. */
async function grantFrom(server: FakeKeyServer, to: SeamDevice, from: { device_id: number; sign_secret: string }, body: unknown): Promise<void> {
  const encKey = sodium.from_base64((await to.store.load()).e2e.deviceSecrets!.enc_public, 1);
  const payload = sealDeviceMessage(sodium, { user_id: ALICE, device_id: from.device_id, signSecret: sodium.from_base64(from.sign_secret, 1) }, { device_id: to.deviceId, encKey }, 'account_key', body);
  await server.callFor(ALICE, from.device_id)({ type: 'device_send', device_id: to.deviceId, payload });
  await settle();
  await settle();
}

describe('e2e session: resetting the account key', () => {
  it('the resetting device makes, stores and publishes a new key with reset, certifies itself with it and stays approved (created)', async () => {
    const { server, a12 } = await twoDevices();
    const before = server.accounts.get(ALICE)!.account_key;
    await a12.session.resetAccount();
    const published = server.requests.filter((r) => r.device === 12 && r.request.type === 'account_publish').at(-1)?.request as { reset?: boolean; account_key: string };
    assert.equal(published.reset, true);
    const account = (await a12.store.load()).e2e.account!;
    assert.notEqual(account.account_key, before);
    assert.equal(server.accounts.get(ALICE)!.account_key, account.account_key);
    assert.ok(account.account_secret, 'the secret of the new key is kept');
    assert.equal(account.resetting, undefined, 'the mark is dropped once the server has the key');
    const self = server.devices.get(12)!;
    assert.ok(isCertified(sodium, self, self.account_signature, account.account_key), 'this device re-certified under the new key');
    assert.deepEqual(a12.standings, [{ state: 'created' }]);
    await settle();
    assert.deepEqual(codes(a12), [], 'its own reset, echoed back, is no alarm');
  });

  it('the other device drops the old key, is pending with an account_reset alarm, is asked about and approved again; messages flow both ways', async () => {
    const { server, a12, a13, bob } = await twoDevices();
    const old = (await a13.store.load()).e2e.account!;
    assert.ok(old.account_secret);
    await a12.session.resetAccount();
    await settle();
    await settle();
    assert.deepEqual(codes(a13), ['account_reset']);
    assert.match((a13.errors[0] as Error).message, /reset/);
    assert.deepEqual(a13.standings, [{ state: 'pending' }]);
    const followed = (await a13.store.load()).e2e.account!;
    assert.deepEqual(followed, {
      user_id: ALICE,
      account_key: server.accounts.get(ALICE)!.account_key,
      grantors: [12],
      former_keys: [old.account_key],
      kept: { account_key: old.account_key, account_secret: old.account_secret },
    }, 'the old secret is no longer held (only kept aside until a grant), nothing held for the new key; its grant may come only from device 12, known as approved before');
    assert.deepEqual(a12.requests.map((r) => r.device_id), [13], 'the resetting device is asked to approve it');
    assert.deepEqual((await a12.session.devices()).map((d) => [d.device_id, d.state]), [[12, 'this'], [13, 'pending']]);
    assert.deepEqual(await sealedTo(a12, 'while-pending'), ['12', '20'], 'nothing sealed to the device until approved again');
    const held = a13.session.seal({ client_msg_id: 'p', thread_id: THREAD, kind: 'e2e', body: {}, created_at: 0 });
    assert.ok('wait' in held, 'a pending device sends nothing');

    await a12.session.approveDevice(13, a13.session.ownFingerprint());
    await settle();
    await settle();
    assert.deepEqual(a13.standings.at(-1), { state: 'approved' });
    assert.equal((await a13.store.load()).e2e.account!.account_secret, (await a12.store.load()).e2e.account!.account_secret, 'the grant handed the new key');
    assert.equal((await a13.store.load()).e2e.account!.kept, undefined, 'the old secret kept aside is dropped once a grant is accepted');
    assert.deepEqual(await sealedTo(a12, 'after'), ['12', '13', '20']);
    const fromA12 = await sealed(a12, THREAD, 'a12', { text: 'hi from 12' });
    assert.equal((await a13.session.open(message(a12, fromA12, 'a12'))).e2e?.status, 'ok');
    const fromA13 = await sealed(a13, THREAD, 'a13', { text: 'hi from 13' });
    assert.deepEqual(Object.keys((fromA13 as { keys: object }).keys).sort(), ['12', '13', '20']);
    assert.equal((await a12.session.open(message(a13, fromA13, 'a13'))).e2e?.status, 'ok');
    assert.equal((await bob.session.open(message(a13, fromA13, 'a13'))).e2e?.status, 'ok');
    assert.deepEqual(codes(a12), []);
  });

  it('a contact sees identity changed, and trusts the devices the new key certified: the resetting one at once, the other once approved again', async () => {
    const { a12, a13, bob } = await twoDevices();
    await a12.session.resetAccount();
    await settle();
    await settle();
    assert.deepEqual(bob.identities.map((i) => [i.user_id, i.reason, i.held]), [[ALICE, 'changed', false]]);
    assert.deepEqual(await sealedTo(bob, 'b1'), ['12', '20'], 'the device the new key certified; not the pending one');
    const fromA12 = await sealed(a12, THREAD, 'r1', { text: 'after the reset' });
    assert.equal((await bob.session.open(message(a12, fromA12, 'r1'))).e2e?.status, 'ok');
    await a12.session.approveDevice(13, a13.session.ownFingerprint());
    await settle();
    await settle();
    assert.deepEqual(await sealedTo(bob, 'b2'), ['12', '13', '20']);
    const fromBob = await sealed(bob, THREAD, 'b3', { text: 'to both' });
    assert.equal((await a13.session.open(message(bob, fromBob, 'b3'))).e2e?.status, 'ok');
    assert.equal((await a12.session.open(message(bob, fromBob, 'b3'))).e2e?.status, 'ok');
  });

  it('a contact who had verified the user holds sends until acceptIdentity; then the re-certified device is sealed to', async () => {
    const { a12, bob } = await twoDevices();
    await bob.session.markVerified(ALICE, true);
    await sealed(bob, THREAD, 'warm', {});
    await a12.session.resetAccount();
    await settle();
    await settle();
    assert.deepEqual(bob.identities.map((i) => [i.reason, i.held, i.verified]), [['changed', true, true]]);
    const entry = { client_msg_id: 'held', thread_id: THREAD, kind: 'e2e' as const, body: { text: 'wait' }, created_at: 0 };
    const first = bob.session.seal(entry);
    assert.ok('wait' in first, 'held');
    let released = false;
    void first.wait.then(() => { released = true; });
    await settle();
    assert.equal(released, false);
    await bob.session.acceptIdentity(ALICE);
    await settle();
    assert.equal(released, true);
    const body = bob.session.seal(entry);
    assert.ok('body' in body);
    assert.deepEqual(Object.keys((body.body as { keys: object }).keys).sort(), ['12', '20']);
    assert.equal((await a12.session.open(message(bob, body.body, 'held'))).e2e?.status, 'ok');
  });

  it('a device left pending (every approved device lost) resets and becomes the account: created, certified, sealed to', async () => {
    const server = new FakeKeyServer();
    server.threads.set(THREAD, [ALICE, BOB]);
    const lost = await seamDevice(server, ALICE, 12);
    const bob = await seamDevice(server, BOB, 20);
    const fresh = await seamDevice(server, ALICE, 14);
    assert.deepEqual(fresh.standings, [{ state: 'pending' }]);
    server.devices.set(12, { ...server.devices.get(12)!, revoked: true });
    server.sessions.delete(12);
    void lost;
    await fresh.session.resetAccount();
    assert.deepEqual(fresh.standings, [{ state: 'pending' }, { state: 'created' }]);
    const self = server.devices.get(14)!;
    assert.ok(isCertified(sodium, self, self.account_signature, server.accounts.get(ALICE)!.account_key));
    await settle();
    await bob.session.refreshThread(THREAD);
    assert.deepEqual(await sealedTo(bob, 'to-fresh'), ['14', '20']);
    const sent = await sealed(fresh, THREAD, 'from-fresh', { text: 'my new phone' });
    assert.equal((await bob.session.open(message(fresh, sent, 'from-fresh'))).e2e?.status, 'ok');
  });

  it('messages sent before the reset by a device not approved again read untrusted_sender; ok again once it is', async () => {
    const { a12, a13, bob } = await twoDevices();
    const before = await sealed(a13, THREAD, 'old', { text: 'before the reset' });
    const old = message(a13, before, 'old');
    assert.equal((await bob.session.open(old)).e2e?.status, 'ok');
    await a12.session.resetAccount();
    await settle();
    await settle();
    assert.equal((await bob.session.open(old)).e2e?.status, 'untrusted_sender', 'its certificate was by the old key');
    await a12.session.approveDevice(13, a13.session.ownFingerprint());
    await settle();
    await settle();
    assert.equal((await bob.session.open(old)).e2e?.status, 'ok');
  });

  it('a reset made while the device was away is seen at its next connect: alarm, pending', async () => {
    const { a12, a13 } = await twoDevices();
    // Device 13 is away: it gets no events (only at its next connect).
    const away = a13.session.event.bind(a13.session);
    a13.session.event = () => {};
    await a12.session.resetAccount();
    await settle();
    assert.deepEqual(codes(a13), []);
    a13.session.event = away;
    await a13.session.connected(ALICE, 13, a13.call);
    assert.deepEqual(codes(a13), ['account_reset']);
    assert.deepEqual(a13.standings, [{ state: 'pending' }]);
    assert.deepEqual((await a13.store.load()).e2e.account!.grantors, [12], 'kept in the store: the grant may come later');
    // A further connect changes nothing: no second alarm.
    await a13.session.connected(ALICE, 13, a13.call);
    assert.deepEqual(codes(a13), ['account_reset']);
  });
});

describe('e2e session: a reset and a malicious server', () => {
  it('a device that was reset takes a new account secret only from a grant for the reported key, sent by a device that key certified', async () => {
    const { server, a12, a13 } = await twoDevices();
    const a12Secrets = (await a12.store.load()).e2e.deviceSecrets!;
    const oldAccount = (await a13.store.load()).e2e.account!;
    await a12.session.resetAccount();
    await settle();
    await settle();
    assert.deepEqual(a13.standings, [{ state: 'pending' }]);
    a13.errors.length = 0;
    const current = (await a12.store.load()).e2e.account!;
    // 1. The old key, from a device the old key certified (a stolen device can send exactly this): refused.
    const ghost = generateDevice(sodium, 66);
    server.devices.set(66, { user_id: ALICE, device_id: 66, ...publication(sodium, ghost, ALICE, oldAccount), revoked: false });
    await a13.session.refreshThread(THREAD);
    await grantFrom(server, a13, ghost, { account_key: oldAccount.account_key, account_secret: oldAccount.account_secret });
    // 2. A key the server invents, from its ghost device certified by it, while the server reports the real new key: refused.
    const invented = generateAccount(sodium, ALICE).account;
    server.devices.set(66, { user_id: ALICE, device_id: 66, ...publication(sodium, ghost, ALICE, invented), revoked: false });
    await a13.session.refreshThread(THREAD);
    await grantFrom(server, a13, ghost, { account_key: invented.account_key, account_secret: invented.account_secret });
    // 3. The real new key, but from the ghost that the new key never certified: refused.
    await grantFrom(server, a13, ghost, { account_key: current.account_key, account_secret: current.account_secret });
    // 4. The new key with a secret that is not its secret half, from the device that reset: refused.
    await grantFrom(server, a13, a12Secrets, { account_key: current.account_key, account_secret: invented.account_secret });
    assert.deepEqual(a13.standings, [{ state: 'pending' }], 'still pending');
    assert.equal((await a13.store.load()).e2e.account!.account_secret, undefined, 'no secret taken');
    assert.equal(codes(a13).filter((code) => code === 'bad_reply').length, 4);
    // The grant the honest approval sends is taken.
    await a12.session.approveDevice(13, a13.session.ownFingerprint());
    await settle();
    await settle();
    assert.deepEqual(a13.standings.at(-1), { state: 'approved' });
    assert.equal((await a13.store.load()).e2e.account!.account_key, current.account_key);
  });

  it('a server that invents a new account key and a ghost device certified by it cannot make a device that held the old key follow it; a pending one it can, as a brand-new one', async () => {
    const { server, a13 } = await twoDevices();
    const pending = await seamDevice(server, ALICE, 14);
    assert.deepEqual(pending.standings, [{ state: 'pending' }]);
    // The operator replaces alice's account key with one of its own, and adds a ghost device certified by it.
    const invented = generateAccount(sodium, ALICE).account;
    const entry = { user_id: ALICE, account_key: invented.account_key, signature: accountSignature(sodium, invented) };
    server.accounts.set(ALICE, entry);
    const ghost = generateDevice(sodium, 66);
    server.devices.set(66, { user_id: ALICE, device_id: 66, ...publication(sodium, ghost, ALICE, invented), revoked: false });
    for (const device of [a13, pending]) device.session.event({ type: 'account_changed', ...entry });
    await settle();
    await settle();
    assert.deepEqual(codes(a13), ['account_reset'], 'the user of the device is told');
    assert.deepEqual(a13.standings, [{ state: 'pending' }]);
    for (const device of [a13, pending]) {
      await device.session.refreshThread(THREAD);
      await grantFrom(server, device, ghost, { account_key: invented.account_key, account_secret: invented.account_secret });
    }
    assert.deepEqual(a13.standings, [{ state: 'pending' }], 'the device that held the old key does not follow');
    assert.equal((await a13.store.load()).e2e.account!.account_secret, undefined);
    assert.match(String((a13.errors.at(-1) as Error).message), /knew as approved before/);
    assert.ok('wait' in a13.session.seal({ client_msg_id: 'n', thread_id: THREAD, kind: 'e2e', body: {}, created_at: 0 }), 'while pending it sends nothing');
    // The limit (docs/e2e.md): a device that never held the key stands where a brand-new one does, and follows.
    assert.deepEqual(pending.standings.at(-1), { state: 'approved' });
    assert.equal((await pending.store.load()).e2e.account!.account_key, invented.account_key);
  });

  it('an account_changed that keys_get does not confirm (a late echo of an earlier reset) changes nothing', async () => {
    const { server, a12, a13 } = await twoDevices();
    const held = (await a13.store.load()).e2e.account!;
    const stale = generateAccount(sodium, ALICE).account;
    a13.session.event({ type: 'account_changed', user_id: ALICE, account_key: stale.account_key, signature: accountSignature(sodium, stale) });
    await settle();
    await settle();
    assert.deepEqual(codes(a13), []);
    assert.deepEqual((await a13.store.load()).e2e.account, held, 'the account key and its secret are kept');
    assert.deepEqual(a13.standings, []);
    // Two resets in a row on 12: the echo of the first, arriving after the second, does not make 12 drop its key.
    await a12.session.resetAccount();
    const first = server.accounts.get(ALICE)!;
    await a12.session.resetAccount();
    a12.session.event({ type: 'account_changed', ...first });
    await settle();
    await settle();
    assert.deepEqual(codes(a12), []);
    assert.equal((await a12.store.load()).e2e.account!.account_key, server.accounts.get(ALICE)!.account_key);
    assert.ok((await a12.store.load()).e2e.account!.account_secret);
  });

  it('a reset the server refuses puts the old key back; one cut short by the connection is published again at the next connect', async () => {
    const { server, a12 } = await twoDevices();
    const before = (await a12.store.load()).e2e.account!;
    const honest = server.callFor(ALICE, 12);
    let fail: ClientError | undefined = new ClientError('invalid_field', 'refused', false);
    const flaky = (async (request: { type: string }) => {
      if (request.type === 'account_publish' && fail) throw fail;
      return honest(request as never);
    }) as typeof honest;
    (a12.session as unknown as { options: { call: typeof honest } }).options.call = flaky;
    await assert.rejects(a12.session.resetAccount(), (error: ClientError) => error.code === 'invalid_field');
    assert.deepEqual((await a12.store.load()).e2e.account, before);
    assert.equal(server.accounts.get(ALICE)!.account_key, before.account_key);
    fail = new ClientError('disconnected', 'dropped', true);
    await assert.rejects(a12.session.resetAccount(), (error: ClientError) => error.code === 'disconnected');
    const marked = (await a12.store.load()).e2e.account!;
    assert.equal(marked.resetting, true);
    assert.notEqual(marked.account_key, before.account_key);
    fail = undefined;
    a12.standings.length = 0;
    await a12.session.connected(ALICE, 12, honest);
    assert.equal(server.accounts.get(ALICE)!.account_key, marked.account_key, 'published again, with reset');
    assert.equal((await a12.store.load()).e2e.account!.resetting, undefined);
    assert.deepEqual(a12.standings, [{ state: 'created' }]);
    const self = server.devices.get(12)!;
    assert.ok(isCertified(sodium, self, self.account_signature, marked.account_key));
  });

  it('a malformed resetting mark or grantors list in the store is store_corrupt, not a new identity', async () => {
    const account = generateAccount(sodium, ALICE).account;
    const text = (value: unknown): string => JSON.stringify({ cursors: {}, outbox: [], account: value });
    assert.throws(() => parseStoreDocument(text({ user_id: ALICE, account_key: account.account_key, resetting: true }), 'chat.json'),
      (error: ClientError) => error.code === 'store_corrupt' && /resetting/.test(error.message), 'a mark without the secret of the key being published');
    assert.throws(() => parseStoreDocument(text({ ...account, resetting: 'yes' }), 'chat.json'), (error: ClientError) => error.code === 'store_corrupt');
    assert.equal(parseStoreDocument(text({ ...account, resetting: true }), 'chat.json').account?.resetting, true);
    assert.throws(() => parseStoreDocument(text({ user_id: ALICE, account_key: account.account_key, grantors: ['12'] }), 'chat.json'), /grantors/);
    assert.throws(() => parseStoreDocument(text({ ...account, grantors: [12] }), 'chat.json'), /grantors/, 'a device holding the key waits for no grant');
    assert.deepEqual(parseStoreDocument(text({ user_id: ALICE, account_key: account.account_key, grantors: [12] }), 'chat.json').account?.grantors, [12]);
    const before = generateAccount(sodium, ALICE).account;
    assert.equal(parseStoreDocument(text({ ...account, resetting: true, resetting_from: before }), 'chat.json').account?.resetting_from?.account_key, before.account_key);
    assert.throws(() => parseStoreDocument(text({ ...account, resetting_from: before }), 'chat.json'), /resetting_from/, 'only with the mark');
    assert.throws(() => parseStoreDocument(text({ ...account, resetting: true, resetting_from: { ...before, resetting: true } }), 'chat.json'), /resetting_from/);
    assert.throws(() => parseStoreDocument(text({ ...account, former_keys: ['x'] }), 'chat.json'), /former_keys/);
    assert.throws(() => parseStoreDocument(text({ ...account, kept: { account_key: before.account_key } }), 'chat.json'), /kept/);
  });
});

/** `device`'s calls through `fail` first: it throws what it returns for a request, or lets the request through. */
function flake(server: FakeKeyServer, device: SeamDevice, fail: (request: { type: string; reset?: boolean; password?: string }) => ClientError | undefined): SeamDevice['call'] {
  const honest = server.callFor(device.userId, device.deviceId);
  const flaky = (async (request: { type: string }) => {
    const error = fail(request);
    if (error) throw error;
    return honest(request as never);
  }) as typeof honest;
  (device.session as unknown as { options: { call: typeof honest } }).options.call = flaky;
  return flaky;
}

describe('e2e session: a reset cut short, then another', () => {
  it('a reset cut short is not published again once another device reset: the mark is dropped and the other reset followed (it would undo it)', async () => {
    const { server, a12, a13 } = await twoDevices();
    const k1 = (await a12.store.load()).e2e.account!;
    let dropped = true;
    const call = flake(server, a12, (request) => (dropped && request.type === 'account_publish' ? new ClientError('disconnected', 'dropped', true) : undefined));
    const away = a12.session.event.bind(a12.session);
    a12.session.event = () => {};
    await assert.rejects(a12.session.resetAccount(), (error: ClientError) => error.code === 'disconnected');
    const marked = (await a12.store.load()).e2e.account!;
    assert.equal(marked.resetting, true);
    assert.equal(marked.resetting_from?.account_key, k1.account_key, 'the key the reset replaces is stored with the mark');
    // Meanwhile device 13 resets (K2), and approves 12 again under it before 12 is back.
    await a13.session.resetAccount();
    await settle();
    const k2 = server.accounts.get(ALICE)!.account_key;
    await a13.session.approveDevice(12, a12.session.ownFingerprint());
    await settle();
    dropped = false;
    a12.session.event = away;
    a12.errors.length = 0;
    await a12.session.connected(ALICE, 12, call);
    await settle();
    await settle();
    assert.equal(server.accounts.get(ALICE)!.account_key, k2, 'the reset cut short is not published over the later one');
    assert.ok(!server.requests.some((entry) => entry.device === 12 && entry.request.type === 'account_publish' && entry.request.account_key === marked.account_key));
    assert.ok(codes(a12).includes('account_reset'), 'the other reset is seen, with the alarm');
    const account = (await a12.store.load()).e2e.account!;
    assert.equal(account.resetting, undefined);
    assert.equal(account.account_key, k2);
    assert.equal(account.account_secret, (await a13.store.load()).e2e.account!.account_secret, 'the grant from 13 (known as approved under K1) is taken');
    assert.deepEqual(a12.standings.at(-1), { state: 'approved' });
  });

  it('a reset cut short that the server then refuses (forbidden) drops the mark: the key it replaced comes back', async () => {
    const { server, a12 } = await twoDevices();
    const k1 = (await a12.store.load()).e2e.account!;
    let fail: ClientError | undefined = new ClientError('disconnected', 'dropped', true);
    const call = flake(server, a12, (request) => (request.type === 'account_publish' ? fail : undefined));
    await assert.rejects(a12.session.resetAccount(), (error: ClientError) => error.code === 'disconnected');
    fail = new ClientError('forbidden', 'not approved', false);
    a12.standings.length = 0;
    await a12.session.connected(ALICE, 12, call);
    assert.deepEqual((await a12.store.load()).e2e.account, k1, 'the mark and its key are dropped');
    assert.deepEqual(a12.standings, [], 'still approved under the old key (nothing created, nothing pending)');
    assert.deepEqual(codes(a12), []);
    assert.equal(server.accounts.get(ALICE)!.account_key, k1.account_key);
  });

  it('resetAccount({ password }) works on a device whose keys could not be settled (no settled connection needed)', async () => {
    const { server, a12, a13 } = await twoDevices();
    // A store from before the key a reset replaces was kept: the mark alone, published again at every connect.
    const k1 = (await a12.store.load()).e2e.account!;
    await a13.session.resetAccount();
    await settle();
    await settle();
    const stale = generateAccount(sodium, ALICE).account;
    await a12.store.setE2e('account', { ...stale, resetting: true });
    const fresh = await seamDevice(server, ALICE, 12, { store: a12.store, connect: false });
    const call = flake(server, fresh, (request) =>
      request.type === 'account_publish' && request.reset && request.password === undefined ? new ClientError('forbidden', 'a reset from a device that is not approved needs your password', false) : undefined);
    await assert.rejects(fresh.session.connected(ALICE, 12, call), (error: ClientError) => error.code === 'forbidden');
    await fresh.session.resetAccount({ password: 'secret' });
    const account = (await fresh.store.load()).e2e.account!;
    assert.equal(server.accounts.get(ALICE)!.account_key, account.account_key, 'the reset with the password went through');
    assert.notEqual(account.account_key, k1.account_key);
    assert.equal(account.resetting, undefined);
    assert.deepEqual(fresh.standings.at(-1), { state: 'created' });
    const self = server.devices.get(12)!;
    assert.ok(isCertified(sodium, self, self.account_signature, account.account_key));
  });
});

describe('e2e session: a server that reports an older account key (its database restored)', () => {
  /** Alice's devices 12 and 13 approved under K1; 12 resets to K2 and approves 13 again; `restore` puts the server back to K1. */
  async function afterReset(): Promise<{ server: FakeKeyServer; a12: SeamDevice; a13: SeamDevice; k2: string; restore: () => void }> {
    const { server, a12, a13 } = await twoDevices();
    const accounts = structuredClone([...server.accounts]);
    const devices = structuredClone([...server.devices]);
    await a12.session.resetAccount();
    await settle();
    await settle();
    await a12.session.approveDevice(13, a13.session.ownFingerprint());
    await settle();
    await settle();
    assert.deepEqual(a13.standings.at(-1), { state: 'approved' });
    const k2 = server.accounts.get(ALICE)!.account_key;
    for (const device of [a12, a13]) for (const list of [device.errors, device.standings]) list.length = 0;
    const restore = (): void => {
      server.accounts.clear();
      for (const [id, entry] of accounts) server.accounts.set(id, entry);
      for (const [id, keys] of devices) server.devices.set(id, keys);
    };
    return { server, a12, a13, k2, restore };
  }

  it('a device that held the older key publishes the current one again with reset, and keeps it (live, and at connect)', async () => {
    const { server, a12, a13, k2, restore } = await afterReset();
    restore();
    a12.session.event({ type: 'account_changed', ...server.accounts.get(ALICE)! });
    await settle();
    await settle();
    await settle();
    assert.equal(server.accounts.get(ALICE)!.account_key, k2, 'the current key is published again');
    for (const id of [12, 13]) {
      const keys = server.devices.get(id)!;
      assert.ok(isCertified(sodium, keys, keys.account_signature, k2), `device ${id} certified by it again (13 at the account_changed of 12's reset)`);
    }
    // Again, seen by 13 at its next connect.
    restore();
    await a13.session.connected(ALICE, 13, a13.call);
    await settle();
    await settle();
    assert.equal(server.accounts.get(ALICE)!.account_key, k2);
    for (const device of [a12, a13]) {
      assert.deepEqual(codes(device), [], 'no alarm: nothing was followed');
      assert.ok(!device.standings.some((standing) => standing.state === 'pending'));
      const account = (await device.store.load()).e2e.account!;
      assert.equal(account.account_key, k2);
      assert.ok(account.account_secret, 'the current secret is kept');
    }
  });

  it('a device that never held the older key follows it, keeps its secret aside, and takes it back when another device publishes it again', async () => {
    const { server, a12, k2, restore } = await afterReset();
    const a14 = await seamDevice(server, ALICE, 14);
    await settle();
    await a12.session.approveDevice(14, a14.session.ownFingerprint());
    await settle();
    await settle();
    assert.deepEqual(a14.standings.at(-1), { state: 'approved' });
    const held = (await a14.store.load()).e2e.account!;
    const away = a12.session.event.bind(a12.session);
    a12.session.event = () => {};
    restore();
    server.devices.delete(14);
    a14.standings.length = 0;
    await a14.session.connected(ALICE, 14, a14.call);
    assert.deepEqual(codes(a14), ['account_reset']);
    assert.deepEqual(a14.standings, [{ state: 'pending' }]);
    assert.deepEqual((await a14.store.load()).e2e.account!.kept, { account_key: k2, account_secret: held.account_secret });
    // Device 12 held the older key: it publishes K2 again; 14 takes its kept secret back.
    a12.session.event = away;
    await a12.session.connected(ALICE, 12, a12.call);
    await settle();
    await settle();
    await settle();
    assert.equal(server.accounts.get(ALICE)!.account_key, k2);
    assert.deepEqual(a14.standings.at(-1), { state: 'approved' });
    const account = (await a14.store.load()).e2e.account!;
    assert.equal(account.account_key, k2);
    assert.equal(account.account_secret, held.account_secret);
    assert.equal(account.kept, undefined);
  });
});
