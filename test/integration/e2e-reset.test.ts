import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { AccountApi, ChatClient, FileStore, MemoryStore } from '../../src/client/node.js';
import { ClientError } from '../../src/client/errors.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { ClientEvents } from '../helpers/client-events.js';
import { FrameMitm } from '../helpers/frame-mitm.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/**
 * Resetting the account key through the SDK over the real server
 * (docs/e2e.md, "Resetting the account key"): the device that resets stays
 * approved; the user's other device drops the old key, is pending with an
 * `account_reset` alarm and is approved again by the resetting one; contacts
 * see `identity` `changed`, a verified one holds sends until it accepts, and
 * messages read `ok` both ways again.
 */

/** Everything a client tells the app, waited on by event. */
class Inbox extends ClientEvents {
  /** Only the SDK's alarms: the assertions compare their codes. */
  declare readonly errors: ClientError[];

  constructor(client: ChatClient) {
    super(client, { errors: 'alarms' });
  }
}

describe('resetting the account key', { timeout: 120_000 }, () => {
  let server: ServerProcess;
  let data: string;
  const clients: ChatClient[] = [];
  let names = 0;

  before(async () => {
    const dir = tempDir();
    data = join(dir, 'data');
    server = await startServer(['--data', data, '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n')]);
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await server.stop();
  });

  async function user(prefix: string): Promise<string> {
    const name = `${prefix}${++names}`;
    await new AccountApi(server.url).register({ username: name, password: 'correct horse' });
    return name;
  }

  type Device = Inbox & { deviceId: number; userId: number; token: string };

  /** A logged-in encrypting device, online, its standing settled (`again`: the same device restarted on its store). */
  async function device(username: string, options: { store?: FileStore | MemoryStore; again?: Device } = {}): Promise<Device> {
    const login = options.again ? undefined : await new AccountApi(server.url).login({ username, password: 'correct horse', device_name: 'reset test', platform: 'bot' });
    const token = options.again?.token ?? login!.token;
    const client = new ChatClient({ server: server.url, token, encryption: true, reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, ...(options.store ? { store: options.store } : {}) });
    clients.push(client);
    const inbox = new Inbox(client);
    await client.start();
    await client.whenOnline();
    await inbox.until(() => inbox.standings[0]);
    return Object.assign(inbox, { deviceId: options.again?.deviceId ?? login!.device.id, userId: client.user!.id, token });
  }

  /** Approves `added` on `approver` once asked (for the `nth` time: a device is asked about again after a reset). */
  async function approve(approver: Device, added: Device, nth = 1): Promise<void> {
    await approver.until(() => (approver.requests.filter((id) => id === added.deviceId).length >= nth ? true : undefined));
    const approvals = added.standings.filter((state) => state === 'approved').length;
    await approver.client.approveDevice(added.deviceId, { fingerprint: added.client.ownFingerprint() });
    await added.until(() => (added.standings.filter((state) => state === 'approved').length > approvals ? true : undefined));
  }

  it('a user with two devices resets on one: the other is pending with an alarm and approved again; contacts see identity changed, a verified one holds sends until it accepts; both directions read ok', async () => {
    const [alice, bob, carol] = [await user('alice'), await user('bob'), await user('carol')];
    const a1 = await device(alice);
    const a2 = await device(alice);
    await approve(a1, a2);
    const stolen = await device(alice);
    await approve(a1, stolen);
    const [b1, c1] = [await device(bob), await device(carol)];
    const withBob = await a1.client.openDirect(bob);
    const withCarol = await a1.client.openDirect(carol);
    // Everyone has everyone pinned; carol compared safety numbers with alice.
    await b1.client.send(withBob.id, { text: 'bob before' }, { encrypted: true });
    await c1.client.send(withCarol.id, { text: 'carol before' }, { encrypted: true });
    for (const d of [a1, a2]) {
      assert.equal((await d.text(withBob.id, 'bob before')).e2e?.status, 'ok');
      assert.equal((await d.text(withCarol.id, 'carol before')).e2e?.status, 'ok');
    }
    assert.equal(await c1.client.verifyQr(a1.userId, (await a1.client.safetyNumber(c1.userId)).qr), true);
    const numberBefore = (await b1.client.safetyNumber(a1.userId)).number;

    // The stolen device is revoked first, then the account key is reset on a1.
    await a1.client.rejectDevice(stolen.deviceId);
    await a1.client.resetAccount();
    assert.deepEqual(a1.standings, ['created', 'created'], 'the resetting device stays approved, under the new key');

    // a2: the alarm, pending, the old key dropped.
    const alarm = await a2.until(() => a2.errors.find((error) => error.code === 'account_reset'));
    assert.match(alarm.message, /reset/);
    await a2.until(() => (a2.standings.at(-1) === 'pending' ? true : undefined));
    assert.deepEqual(a2.standings, ['pending', 'approved', 'pending']);
    assert.deepEqual(a1.errors.map((error) => error.code), [], 'its own reset is no alarm on the device that made it');
    // The server audited the reset.
    const audited = await server.waitForLog((line) => line.audit === 'account_key_reset' && line.user_id === a1.userId);
    assert.match(JSON.stringify(audited), new RegExp(`\\b${a2.deviceId}\\b`), 'the devices made pending are named');

    // a1 is asked about a2 again, and approves it after comparing codes; a2 gets the new key.
    await approve(a1, a2, 2);
    assert.deepEqual((await a1.client.devices()).map((d) => [d.device_id, d.state]), [[a1.deviceId, 'this'], [a2.deviceId, 'approved'], [stolen.deviceId, 'revoked']]);

    // bob (unverified): identity changed, taken; messages read ok both ways, on both of alice's devices.
    const bobSaw = await b1.until(() => b1.identities.find((change) => change.user_id === a1.userId && change.reason === 'changed'));
    assert.deepEqual([bobSaw.held, bobSaw.verified], [false, false]);
    assert.notEqual((await b1.client.safetyNumber(a1.userId)).number, numberBefore);
    assert.equal((await a1.client.safetyNumber(b1.userId)).number, (await b1.client.safetyNumber(a1.userId)).number, 'both sides agree on the new number');
    await a1.client.send(withBob.id, { text: 'alice after the reset' }, { encrypted: true });
    assert.equal((await b1.text(withBob.id, 'alice after the reset')).e2e?.status, 'ok');
    await a2.client.send(withBob.id, { text: 'alice on her other device' }, { encrypted: true });
    assert.equal((await b1.text(withBob.id, 'alice on her other device')).e2e?.status, 'ok');
    await b1.client.send(withBob.id, { text: 'bob after the reset' }, { encrypted: true });
    for (const d of [a1, a2]) assert.equal((await d.text(withBob.id, 'bob after the reset')).e2e?.status, 'ok');

    // carol (verified): identity changed, held; her send waits, unsent, until she accepts.
    const carolSaw = await c1.until(() => c1.identities.find((change) => change.user_id === a1.userId && change.reason === 'changed'));
    assert.deepEqual([carolSaw.held, carolSaw.verified], [true, true]);
    const held = c1.client.send(withCarol.id, { text: 'carol after the reset' }, { encrypted: true });
    await c1.client.history(withCarol.id); // a round trip: the outbox had its turn
    assert.equal(c1.client.pending().some((entry) => entry.thread_id === withCarol.id), true, 'held in the outbox');
    const db2 = new Database(join(data, 'chatd.db'), { readonly: true });
    const count = db2.prepare('SELECT count(*) FROM messages WHERE thread_id = ?').pluck().get(withCarol.id);
    db2.close();
    assert.equal(count, 1, 'nothing sent while held');
    await c1.client.acceptIdentity(a1.userId);
    await held;
    for (const d of [a1, a2]) assert.equal((await d.text(withCarol.id, 'carol after the reset')).e2e?.status, 'ok');
    await a2.client.send(withCarol.id, { text: 'alice to carol' }, { encrypted: true });
    assert.equal((await c1.text(withCarol.id, 'alice to carol')).e2e?.status, 'ok');
    assert.equal((await c1.client.safetyNumber(a1.userId)).verified, false, 'verified again only by comparing again');
  });

  it('a device away during the reset gets the alarm at its restart, keeps waiting across restarts, and is approved again', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const path = join(tempDir(), 'a2.json');
    const a1 = await device(alice);
    const a2 = await device(alice, { store: new FileStore(path) });
    await approve(a1, a2);
    const b1 = await device(bob);
    const thread = await a1.client.openDirect(bob);
    await a2.client.close();
    await a1.client.resetAccount();
    const back = await device(alice, { store: new FileStore(path), again: a2 });
    assert.deepEqual(back.standings, ['pending']);
    assert.deepEqual(back.errors.map((error) => error.code), ['account_reset'], 'the alarm, at connect');
    await back.client.close();
    // Restarted again before approval: still pending, no second alarm; the list of devices its grant may come from is kept.
    const waiting = await device(alice, { store: new FileStore(path), again: a2 });
    assert.deepEqual([waiting.standings, waiting.errors.map((error) => error.code)], [['pending'], []]);
    await approve(a1, waiting, 2);
    await b1.client.send(thread.id, { text: 'to the device approved again' }, { encrypted: true });
    assert.equal((await waiting.text(thread.id, 'to the device approved again')).e2e?.status, 'ok');
  });

  it('a reset made on a device the others never knew approved: they refuse its grant and must log in again', async () => {
    const alice = await user('alice');
    const a1 = await device(alice);
    const fresh = await device(alice);
    assert.deepEqual(fresh.standings, ['pending']);
    // The fresh device resets while pending (as if the user had lost a1): a1 knew it only as pending.
    // A token alone is not enough for that: the server wants the password, and a wrong one is refused.
    await assert.rejects(fresh.client.resetAccount(), (error: ClientError) => error.code === 'forbidden');
    await assert.rejects(fresh.client.resetAccount({ password: 'wrong horse' }), (error: ClientError) => error.code === 'invalid_credentials');
    assert.deepEqual([fresh.standings, a1.errors], [['pending'], []], 'nothing changed');
    await fresh.client.resetAccount({ password: 'correct horse' });
    assert.deepEqual(fresh.standings, ['pending', 'created']);
    await a1.until(() => a1.errors.find((error) => error.code === 'account_reset'));
    await a1.until(() => (a1.standings.at(-1) === 'pending' ? true : undefined));
    await fresh.until(() => fresh.requests.find((id) => id === a1.deviceId));
    await fresh.client.approveDevice(a1.deviceId, { fingerprint: a1.client.ownFingerprint() });
    const refused = await a1.until(() => a1.errors.find((error) => error.code === 'bad_reply' && /knew as approved before/.test(error.message)));
    assert.match(refused.message, new RegExp(`device ${fresh.deviceId}`));
    assert.deepEqual(a1.standings.at(-1), 'pending', 'it does not follow');
    assert.deepEqual((await fresh.client.devices()).find((d) => d.device_id === a1.deviceId)?.state, 'approved', 'the server took the certificate; the device did not take the key');
  });

  it('a reset cut short, then a reset on another device: the first device follows the later reset instead of re-sending its own, and is approved again', async () => {
    const [alice, bob] = [await user('alice'), await user('bob')];
    const mitm = await FrameMitm.start(server.wsUrl);
    let dropReset = false;
    mitm.rewrite = (frame, link, direction) => {
      // Device 1's reset never reaches the server: the link drops as it is sent.
      if (direction === 'up' && frame.type === 'account_publish' && frame.reset && dropReset) {
        link.close();
        return null;
      }
      return frame;
    };
    try {
      const login = await new AccountApi(server.url).login({ username: alice, password: 'correct horse', device_name: 'reset test', platform: 'bot' });
      const store = new MemoryStore();
      const client = new ChatClient({ server: mitm.url, token: login.token, encryption: true, store, reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, requestTimeoutMs: 3000 });
      clients.push(client);
      const inbox = new Inbox(client);
      await client.start();
      await client.whenOnline();
      await inbox.until(() => inbox.standings[0]);
      const a1: Device = Object.assign(inbox, { deviceId: login.device.id, userId: client.user!.id, token: login.token });
      const a2 = await device(alice);
      await approve(a1, a2);
      const b1 = await device(bob);
      const thread = await b1.client.openDirect(alice);
      dropReset = true;
      await assert.rejects(a1.client.resetAccount(), (error: ClientError) => error.retryable);
      assert.equal((await store.load()).e2e.account?.resetting, true, 'the reset cut short stays marked');
      // Meanwhile the user resets on device 2; then device 1's link lets its frames through again.
      await a2.client.resetAccount();
      dropReset = false;
      await a1.until(() => a1.errors.find((error) => error.code === 'account_reset'));
      await a1.until(() => (a1.standings.at(-1) === 'pending' ? true : undefined));
      assert.ok(!a1.errors.some((error) => error.code === 'forbidden'), 'the stale reset is not sent again');
      assert.equal((await store.load()).e2e.account?.resetting, undefined, 'the mark is dropped');
      await approve(a2, a1, 1);
      assert.deepEqual(a2.errors.map((error) => error.code), [], 'device 2 keeps the key it made: nothing undid its reset');
      assert.equal(a2.standings.at(-1), 'created');
      await b1.client.send(thread.id, { text: 'to the device approved again' }, { encrypted: true });
      assert.equal((await a1.text(thread.id, 'to the device approved again')).e2e?.status, 'ok');
    } finally {
      await mitm.close();
    }
  });

  it('without encryption resetAccount is refused', async () => {
    const alice = await user('alice');
    const login = await new AccountApi(server.url).login({ username: alice, password: 'correct horse', device_name: 'plain', platform: 'bot' });
    const client = new ChatClient({ server: server.url, token: login.token });
    clients.push(client);
    assert.throws(() => client.resetAccount(), (error: ClientError) => error.code === 'invalid_field');
  });
});
