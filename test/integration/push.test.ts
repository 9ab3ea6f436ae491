import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChatClient } from '../../src/client/node.js';
import { request, signUp } from '../helpers/http.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import {
  APNS_KEY_ID,
  APNS_TEAM_ID,
  type FakeApns,
  type FakeFcm,
  type TestPki,
  makeTestPki,
  serviceAccountJson,
  startFakeApns,
  startFakeFcm,
} from '../helpers/push-providers.js';
import { TestAccount, approvedDevice, envelope, loadSodium } from '../helpers/e2e.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type Connected, type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * Push notifications through the real node-apn and firebase-admin clients,
 * against local servers that speak APNs' and FCM's protocols. One notification
 * waits for a provider at a time (push.concurrency = 1), so the queue is worked
 * in order and "no notification for X" is proven by the one for what came after X.
 */

const BUNDLE_ID = 'org.example.chat';
const PROJECT = 'chatd-test';
const apnsToken = (n: number): string => n.toString(16).padStart(64, 'a');
const fcmToken = (n: number): string => `fcm-token-${n}-${'x'.repeat(40)}`;

interface World {
  readonly dir: string;
  readonly data: string;
  readonly apns: FakeApns;
  readonly fcm: FakeFcm;
  readonly configFile: string;
  readonly env: Record<string, string>;
  server: ServerProcess;
}

let pki: TestPki;
let serviceAccount: string;
const cleanups: Array<() => Promise<unknown>> = [];

before(() => {
  const dir = tempDir();
  pki = makeTestPki(dir);
  serviceAccount = serviceAccountJson(dir, PROJECT);
});
after(() => Promise.all(cleanups.map((cleanup) => cleanup())));

/** The [push] settings of the tests; `extra` ("key = value" lines) overrides them. */
function pushSection(extra: string): string {
  const settings = new Map([
    ['concurrency', '1'],
    ['retry_base_ms', '20'],
    ['request_timeout_ms', '1000'],
    ['max_attempts', '3'],
  ]);
  for (const line of extra.split('\n').filter((l) => l.includes('='))) {
    const [key, value] = line.split('=').map((part) => part.trim()) as [string, string];
    settings.set(key, value);
  }
  return [...settings].map(([key, value]) => `${key} = ${value}`).join('\n');
}

function pushConfig(apnsPort: number, fcmPort: number, extra = ''): string {
  return `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[push]
${pushSection(extra)}
[apns]
key_file = "${pki.apnsKeyFile}"
key_id = "${APNS_KEY_ID}"
team_id = "${APNS_TEAM_ID}"
bundle_id = "${BUNDLE_ID}"
environment = "sandbox"
connect_to = "localhost:${apnsPort}"
[fcm]
service_account_file = "${serviceAccount}"
connect_to = "127.0.0.1:${fcmPort}"
`;
}

/** Fresh fakes and a fresh server on its own data directory. */
async function world(extraPush = '', serverArgs: string[] = []): Promise<World> {
  const dir = tempDir();
  const apns = await startFakeApns(pki);
  const fcm = await startFakeFcm(pki, { serviceAccountFile: serviceAccount });
  const configFile = writeConfig(dir, pushConfig(apns.port, fcm.port, extraPush));
  const env = { NODE_EXTRA_CA_CERTS: pki.caFile };
  const data = join(dir, 'data');
  const server = await startServer(['--data', data, '--config', configFile, ...serverArgs], { env });
  const w: World = { dir, data, apns, fcm, configFile, env, server };
  cleanups.push(async () => {
    await w.server.stop();
    await Promise.all([apns.close(), fcm.close()]);
  });
  return w;
}

let names = 0;
/** A user with a device that is logged in but not connected (offline), with a push token. */
async function offlineUser(w: World, prefix: string, push: { platform: 'apns' | 'fcm'; token: string } | null): Promise<{ id: number; token: string; deviceId: number; name: string }> {
  const name = `${prefix}${++names}`;
  const user = await signUp(w.server.url, name, 'correct horse', 'phone');
  if (push) {
    const registered = await request(`${w.server.url}/v1/me/push`, { method: 'PUT', token: user.token, body: push });
    assert.equal(registered.status, 200, JSON.stringify(registered.body));
  }
  return { ...user, id: user.userId, name };
}

async function online(w: World, token: string): Promise<Connected> {
  return connectAuthenticated(w.server.wsUrl, token);
}

async function direct(socket: TestSocket, userId: number): Promise<number> {
  return (await socket.expect({ type: 'direct_open', user_id: userId }, 'thread')).thread.id;
}

let sends = 0;
async function send(socket: TestSocket, threadId: number, body: unknown, kind: 'text' | 'e2e' = 'text'): Promise<any> {
  return socket.expect({ type: 'send', thread_id: threadId, client_msg_id: `m${++sends}`, kind, body }, 'ack');
}

const aps = (record: { payload: unknown }): any => (record.payload as any).aps;

describe('push notifications', { timeout: 120_000 }, () => {
  it('an offline device gets an APNs notification: sender, preview, badge of total unread, collapse per thread', async () => {
    const w = await world();
    const bob = await offlineUser(w, 'bob', { platform: 'apns', token: apnsToken(1) });
    const alice = await offlineUser(w, 'alice', null);
    const a = await online(w, alice.token);
    const thread = await direct(a.socket, bob.id);
    const first = await send(a.socket, thread, { text: 'hello bob' });
    const [one] = await w.apns.waitForRequests(1);
    assert.equal(one?.token, apnsToken(1));
    assert.equal(one?.headers['apns-topic'], BUNDLE_ID);
    assert.equal(one?.headers['apns-collapse-id'], `thread-${thread}`);
    assert.equal(one?.headers['apns-push-type'], 'alert');
    assert.deepEqual(aps(one!).alert, { title: alice.name, body: 'hello bob' });
    assert.equal(aps(one!).badge, 1);
    assert.equal((one?.payload as any).thread_id, String(thread));
    assert.equal((one?.payload as any).seq, String(first.seq));
    await send(a.socket, thread, { text: 'are you there?' });
    const [, two] = await w.apns.waitForRequests(2);
    assert.equal(aps(two!).badge, 2, 'the badge counts every unread message');
    assert.equal(two?.headers['apns-collapse-id'], `thread-${thread}`, 'the same thread: one notification on the phone');
    a.socket.close();
  });

  it('a group notification is titled with the group; online, muted and sender devices get none', async () => {
    const w = await world();
    // bob: a phone offline (token 2) and a laptop online (token 3). carol: offline, token 4, mutes the group.
    const bob = await offlineUser(w, 'bob', { platform: 'apns', token: apnsToken(2) });
    const laptop = await request(`${w.server.url}/v1/login`, { body: { username: bob.name, password: 'correct horse', device_name: 'laptop', platform: 'cli' } });
    await request(`${w.server.url}/v1/me/push`, { method: 'PUT', token: laptop.body.token, body: { platform: 'apns', token: apnsToken(3) } });
    const carol = await offlineUser(w, 'carol', { platform: 'apns', token: apnsToken(4) });
    const alice = await offlineUser(w, 'alice', { platform: 'apns', token: apnsToken(5) });
    const a = await online(w, alice.token);
    const group = (await a.socket.expect({ type: 'group_create', title: 'Climbing', members: [bob.id, carol.id] }, 'thread')).thread.id;
    const bobLaptop = await online(w, laptop.body.token);
    const carolNow = await online(w, carol.token);
    await carolNow.socket.expect({ type: 'thread_settings', thread_id: group, muted: true }, 'thread');
    carolNow.socket.close();
    await carolNow.socket.closed;
    await send(a.socket, group, { text: 'Saturday at nine?' });
    // Then a direct message to carol, in another thread: its notification comes after any the group made.
    const direct1 = await direct(a.socket, carol.id);
    await send(a.socket, direct1, { text: 'ping' });
    const records = await w.apns.waitForRequests(2);
    const tokens = records.map((r) => r.token);
    assert.deepEqual(tokens, [apnsToken(2), apnsToken(4)], 'bob’s phone for the group, carol only for the direct thread');
    assert.deepEqual(aps(records[0]!).alert, { title: 'Climbing', body: `${alice.name}: Saturday at nine?` });
    assert.ok(!tokens.includes(apnsToken(3)), 'bob’s laptop is online: no notification');
    assert.ok(!tokens.includes(apnsToken(5)), 'the sender gets none');
    a.socket.close();
    bobLaptop.socket.close();
  });

  it('mute does not silence a mention: a muted member is pushed when mentioned ("mentioned you"), not otherwise; edits and reactions push nobody', async () => {
    const w = await world();
    const bob = await offlineUser(w, 'bob', { platform: 'apns', token: apnsToken(20) });
    const carol = await offlineUser(w, 'carol', null);
    const alice = await offlineUser(w, 'alice', null);
    const a = await online(w, alice.token);
    const group = (await a.socket.expect({ type: 'group_create', title: 'Climbing', members: [bob.id, carol.id] }, 'thread')).thread.id;
    const b = await online(w, bob.token);
    await b.socket.expect({ type: 'thread_settings', thread_id: group, muted: true }, 'thread');
    b.socket.close();
    await b.socket.closed;
    // Not mentioned: nothing. The direct message after it proves it (one notification at a time, in order).
    await send(a.socket, group, { text: 'anyone free on Saturday?' });
    const toBob = await direct(a.socket, bob.id);
    await send(a.socket, toBob, { text: 'first direct' });
    const [first] = await w.apns.waitForRequests(1);
    assert.deepEqual(aps(first!).alert, { title: alice.name, body: 'first direct' }, 'nothing for the muted group before it');
    // Mentioned: pushed through the mute, and the notification says so.
    const mention = await a.socket.expect(
      { type: 'send', thread_id: group, client_msg_id: `m${++sends}`, kind: 'text', body: { text: `@${bob.name} you coming?` }, mentions: [bob.id] },
      'ack',
    );
    const [, mentioned] = await w.apns.waitForRequests(2);
    assert.equal(mentioned?.token, apnsToken(20));
    assert.deepEqual(aps(mentioned!).alert, { title: 'Climbing', body: `${alice.name} mentioned you: @${bob.name} you coming?` });
    assert.equal((mentioned?.payload as any).mentioned, 'true');
    assert.equal((mentioned?.payload as any).message_id, String(mention.message_id));
    // An edit that mentions him again and a reaction are change rows: no notification (the next direct one comes next).
    await a.socket.expect(
      { type: 'edit', message_id: mention.message_id, client_msg_id: `m${++sends}`, kind: 'text', body: { text: `@${bob.name} are you coming?` }, mentions: [bob.id] },
      'ack',
    );
    await a.socket.expect({ type: 'react', message_id: mention.message_id, emoji: '👍', on: true, client_msg_id: `m${++sends}` }, 'ack');
    await send(a.socket, toBob, { text: 'second direct' });
    const [, , third] = await w.apns.waitForRequests(3);
    assert.deepEqual(aps(third!).alert, { title: alice.name, body: 'second direct' }, 'the edit and the reaction pushed nothing');
    a.socket.close();
  });

  it('an end-to-end encrypted message and previews turned off: no plaintext, only the thread in the data', async () => {
    const w = await world('preview = false');
    const bob = await offlineUser(w, 'bob', { platform: 'fcm', token: fcmToken(1) });
    const alice = await offlineUser(w, 'alice', null);
    const a = await online(w, alice.token);
    const thread = await direct(a.socket, bob.id);
    await loadSodium();
    await approvedDevice(a.socket, alice.id, alice.deviceId, new TestAccount(alice.id));
    const sealed = envelope(alice.deviceId, [alice.deviceId]);
    await send(a.socket, thread, sealed, 'e2e');
    const [e2e] = await w.fcm.waitForRequests(1);
    assert.doesNotMatch(JSON.stringify(e2e?.message), new RegExp(String(sealed.ciphertext).slice(0, 16).replace(/[+/]/g, '.')));
    assert.doesNotMatch(JSON.stringify(e2e?.message), new RegExp(alice.name));
    assert.deepEqual(e2e?.message.notification, { body: 'New message' });
    assert.equal((e2e?.message.data as any).thread_id, String(thread));
    assert.equal((e2e?.message.data as any).encrypted, 'true');
    // A plaintext message, with previews off, says no more.
    await send(a.socket, thread, { text: 'private words' });
    const [, plain] = await w.fcm.waitForRequests(2);
    assert.doesNotMatch(JSON.stringify(plain?.message), /private words/);
    assert.equal((plain?.message.android as any).collapse_key, `thread-${thread}`);
    a.socket.close();
  });

  it('FCM: the notification, collapse key and badge reach the v1 endpoint with the service account’s token', async () => {
    const w = await world();
    const bob = await offlineUser(w, 'bob', { platform: 'fcm', token: fcmToken(2) });
    const alice = await offlineUser(w, 'alice', null);
    const a = await online(w, alice.token);
    const thread = await direct(a.socket, bob.id);
    await send(a.socket, thread, { text: 'hi from alice' });
    const [record] = await w.fcm.waitForRequests(1);
    assert.equal(record?.projectId, PROJECT);
    assert.equal(record?.message.token, fcmToken(2));
    assert.deepEqual(record?.message.notification, { title: alice.name, body: 'hi from alice' });
    assert.equal((record?.message.android as any).collapse_key, `thread-${thread}`);
    assert.equal((record?.message.android as any).notification.notification_count, 1);
    assert.equal((record?.message.apns as any).headers['apns-collapse-id'], `thread-${thread}`);
    assert.ok(w.fcm.tokenRequests >= 1, 'the credential fetched an access token from the token endpoint');
    a.socket.close();
  });

  it('a provider failing for a while (500, 429, 503) is retried until it takes the notification', async () => {
    const w = await world('max_attempts = 4');
    w.apns.respondWith([{ status: 500, reason: 'InternalServerError' }, { status: 429, reason: 'TooManyRequests', retryAfter: 1 }, { status: 503, reason: 'ServiceUnavailable' }]);
    const bob = await offlineUser(w, 'bob', { platform: 'apns', token: apnsToken(6) });
    const alice = await offlineUser(w, 'alice', null);
    const a = await online(w, alice.token);
    await send(a.socket, await direct(a.socket, bob.id), { text: 'try again' });
    const records = await w.apns.waitForRequests(4);
    assert.deepEqual(records.map((r) => (typeof r.reply === 'string' ? r.reply : r.reply.status)), [500, 429, 503, 200]);
    assert.deepEqual(aps(records[3]!).alert, aps(records[0]!).alert, 'the same notification each time');
    await w.server.waitForLog((line) => line.msg === 'push failed for now; will retry');
    a.socket.close();
  });

  it('a notification is given up after push.max_attempts failures', async () => {
    const w = await world();
    w.apns.respondWith(() => ({ status: 500, reason: 'InternalServerError' }));
    const bob = await offlineUser(w, 'bob', { platform: 'apns', token: apnsToken(14) });
    const alice = await offlineUser(w, 'alice', null);
    const a = await online(w, alice.token);
    await send(a.socket, await direct(a.socket, bob.id), { text: 'never arrives' });
    const given = await w.server.waitForLog((line) => line.msg === 'push given up after repeated provider failures');
    assert.equal(given.attempts, 3);
    assert.equal(w.apns.requests.length, 3, 'max_attempts = 3: three requests, then no more');
    a.socket.close();
  });

  it('a device that comes online before its notification goes out does not get it', async () => {
    // The first attempt fails, the retry waits at least 1.5 s: time enough for bob to connect first.
    const w = await world('retry_base_ms = 3000', ['--log-level', 'debug']);
    w.apns.respondWith([{ status: 500, reason: 'InternalServerError' }]);
    const bob = await offlineUser(w, 'bob', { platform: 'apns', token: apnsToken(12) });
    const alice = await offlineUser(w, 'alice', null);
    const a = await online(w, alice.token);
    const thread = await direct(a.socket, bob.id);
    const sent = await send(a.socket, thread, { text: 'are you up?' });
    await w.apns.waitForRequests(1);
    const b = await online(w, bob.token);
    assert.equal(b.inbox.length, 1);
    // An ack goes through the same group commit as the live mark, after it: once answered, bob is live in the database.
    await b.socket.expect({ type: 'delivered', thread_id: thread, seq: sent.seq }, 'delivered');
    const skipped = await w.server.waitForLog((line) => line.msg === 'push not sent' && line.device === bob.deviceId);
    assert.equal(skipped.reason, 'online');
    assert.equal(w.apns.requests.length, 1, 'only the failed first attempt reached the provider');
    a.socket.close();
    b.socket.close();
  });

  it('a device that was connected (a suspended app) gets a notification for what it got live but never acked, once it is offline', async () => {
    const w = await world();
    const bob = await offlineUser(w, 'bob', { platform: 'apns', token: apnsToken(13) });
    const alice = await offlineUser(w, 'alice', null);
    const a = await online(w, alice.token);
    const thread = await direct(a.socket, bob.id);
    const b = await online(w, bob.token);
    await send(a.socket, thread, { text: 'while you were connected' });
    await b.socket.nextEvent('message');
    // Live: no notification. The socket then goes without an ack, as a suspended app's does.
    b.socket.close();
    await b.socket.closed;
    const [record] = await w.apns.waitForRequests(1);
    assert.equal(record?.token, apnsToken(13));
    assert.deepEqual(aps(record!).alert, { title: alice.name, body: 'while you were connected' });
    a.socket.close();
  });

  it('a token the provider calls dead is removed (APNs 410, FCM UNREGISTERED and INVALID_ARGUMENT), and gets no more notifications', async () => {
    const w = await world();
    w.apns.respondWith((req) => (req.token === apnsToken(7) ? { status: 410, reason: 'Unregistered' } : undefined));
    w.fcm.respondWith((req) =>
      req.message.token === fcmToken(3) ? { status: 404, errorCode: 'UNREGISTERED' } : req.message.token === fcmToken(4) ? { status: 400, errorCode: 'INVALID_ARGUMENT' } : undefined,
    );
    const bob = await offlineUser(w, 'bob', { platform: 'apns', token: apnsToken(7) });
    const carol = await offlineUser(w, 'carol', { platform: 'fcm', token: fcmToken(3) });
    const dave = await offlineUser(w, 'dave', { platform: 'fcm', token: fcmToken(4) });
    const alice = await offlineUser(w, 'alice', null);
    const a = await online(w, alice.token);
    await send(a.socket, await direct(a.socket, bob.id), { text: 'to bob' });
    await send(a.socket, await direct(a.socket, carol.id), { text: 'to carol' });
    await send(a.socket, await direct(a.socket, dave.id), { text: 'to dave' });
    await w.apns.waitForRequests(1);
    await w.fcm.waitForRequests(2);
    for (const device of [bob.deviceId, carol.deviceId, dave.deviceId]) {
      await w.server.waitForLog((line) => line.msg === 'push token removed: the provider says it is no longer valid' && line.device === device);
    }
    for (const user of [bob, carol, dave]) {
      assert.deepEqual((await request(`${w.server.url}/v1/me/push`, { token: user.token })).body, { push: null });
    }
    const stats = await runCli(['stats', '--json', '--config', w.configFile, '--data', w.data]);
    const push = JSON.parse(stats.stdout).push;
    assert.equal(push.dropped_tokens, 3);
    assert.equal(push.queued, 0);
    a.socket.close();
  });

  it('a hung provider slows no send; a restart mid-queue still delivers the notification', async () => {
    const w = await world();
    w.apns.respondWith(() => 'hang');
    const bob = await offlineUser(w, 'bob', { platform: 'apns', token: apnsToken(8) });
    const alice = await offlineUser(w, 'alice', null);
    const a = await online(w, alice.token);
    const thread = await direct(a.socket, bob.id);
    await send(a.socket, thread, { text: 'first' });
    await w.apns.waitForRequests(1);
    // The provider holds that request; every send is still stored and acked.
    for (let i = 0; i < 20; i++) await send(a.socket, thread, { text: `more ${i}` });
    assert.equal(w.apns.requests.length, 1, 'the push queue waits on the provider, the senders do not');
    a.socket.close();
    await w.server.stop('SIGKILL');
    w.apns.respondWith(() => undefined);
    w.server = await startServer(['--data', w.data, '--config', w.configFile], { env: w.env });
    // One notification for the thread: the newest message's, the older ones collapsed into it.
    const [, resent] = await w.apns.waitForRequests(2);
    assert.equal(resent?.token, apnsToken(8));
    assert.deepEqual(aps(resent!).alert, { title: alice.name, body: 'more 19' });
    assert.equal(aps(resent!).badge, 21);
  });

  it('devices register, replace and remove tokens over the protocol; bad registrations are refused by field', async () => {
    const dir = tempDir();
    const apns = await startFakeApns(pki);
    // FCM not configured on this server.
    const configFile = writeConfig(dir, pushConfig(apns.port, 1).replace(/\[fcm\][\s\S]*$/, ''));
    const server = await startServer(['--data', join(dir, 'data'), '--config', configFile], { env: { NODE_EXTRA_CA_CERTS: pki.caFile } });
    cleanups.push(async () => {
      await server.stop();
      await apns.close();
    });
    const bob = await signUp(server.url, `bob${++names}`, 'correct horse', 'phone');
    const b = await connectAuthenticated(server.wsUrl, bob.token);
    const refused = async (frame: Record<string, unknown>): Promise<any> => b.socket.expect({ type: 'push_register', ...frame }, 'error');
    assert.equal((await refused({ platform: 'fcm', token: fcmToken(9) })).error.field, 'platform');
    assert.equal((await refused({ platform: 'apns', token: 'not-hex' })).error.field, 'token');
    assert.equal((await refused({ platform: 'apns', token: apnsToken(9), topic: 'bad topic!' })).error.field, 'topic');
    assert.equal((await refused({ platform: 'webpush', token: 'x' })).error.field, 'token', 'webpush is a kind of token now (test/integration/webpush.test.ts)');
    assert.equal((await refused({ platform: 'sms', token: 'x' })).error.field, 'platform');
    await b.socket.expect({ type: 'push_register', platform: 'apns', token: apnsToken(9), topic: 'org.example.beta' }, 'ok');
    assert.deepEqual((await request(`${server.url}/v1/me/push`, { token: bob.token })).body, { push: { platform: 'apns', topic: 'org.example.beta' } });
    // The same token registered by another login on the same phone moves there.
    const again = await request(`${server.url}/v1/login`, { body: { username: `bob${names}`, password: 'correct horse', device_name: 'phone again', platform: 'ios' } });
    await request(`${server.url}/v1/me/push`, { method: 'PUT', token: again.body.token, body: { platform: 'apns', token: apnsToken(9) } });
    assert.deepEqual((await request(`${server.url}/v1/me/push`, { token: bob.token })).body, { push: null });
    await b.socket.expect({ type: 'push_unregister' }, 'ok');
    const bad = await request(`${server.url}/v1/me/push`, { method: 'PUT', token: again.body.token, body: { platform: 'apns' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'token');
    assert.equal((await request(`${server.url}/v1/me/push`, { method: 'DELETE', token: again.body.token })).status, 204);
    b.socket.close();
    // The SDK's calls for the same.
    const sdk = new ChatClient({ server: server.url, token: again.body.token });
    await sdk.start();
    await sdk.whenOnline();
    await sdk.registerPush({ platform: 'apns', token: apnsToken(11) });
    assert.deepEqual((await request(`${server.url}/v1/me/push`, { token: again.body.token })).body, { push: { platform: 'apns', topic: null } });
    await sdk.unregisterPush();
    assert.deepEqual((await request(`${server.url}/v1/me/push`, { token: again.body.token })).body, { push: null });
    await sdk.close();
  });

  it('chatd push test sends a test notification and prints the provider’s answer; a dead token is removed', async () => {
    const w = await world();
    const bob = await offlineUser(w, 'bob', { platform: 'apns', token: apnsToken(10) });
    const run = (args: string[]) => runCli(['push', 'test', ...args, '--config', w.configFile, '--data', w.data], { env: w.env });
    const sent = await run([String(bob.deviceId)]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, new RegExp(`sent to device ${bob.deviceId} \\(apns\\): accepted by the provider`));
    const [record] = await w.apns.waitForRequests(1);
    assert.deepEqual(aps(record!).alert, { title: 'chatd', body: 'Test notification from chatd' });
    w.apns.respondWith(() => ({ status: 410, reason: 'Unregistered' }));
    const dead = await run([String(bob.deviceId)]);
    assert.equal(dead.code, 1);
    assert.match(dead.stderr, /no longer valid \(APNs 410 Unregistered\); removed it from device/);
    const none = await run([String(bob.deviceId)]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /has no push token/);
    const missing = await run(['999999']);
    assert.match(missing.stderr, /no device 999999/);
  });

  it('a bad key file or a missing key stops start-up with a message naming the key', async () => {
    const dir = tempDir();
    const notAKey = join(dir, 'AuthKey.p8');
    writeFileSync(notAKey, 'this is not a key\n');
    const cases: Array<[string, RegExp]> = [
      [`[apns]\nkey_file = "${notAKey}"\nkey_id = "K"\nteam_id = "T"\nbundle_id = "b"`, /apns\.key_file: .* is not an APNs token key/],
      [`[apns]\nkey_file = "${pki.apnsKeyFile}"\nkey_id = "K"\nbundle_id = "b"`, /apns\.team_id is required when apns\.key_file is set/],
      [`[apns]\nkey_file = "${join(dir, 'missing.p8')}"\nkey_id = "K"\nteam_id = "T"\nbundle_id = "b"`, /apns\.key_file: cannot read .*missing\.p8: ENOENT/],
      [`[fcm]\nservice_account_file = "${notAKey}"`, /fcm\.service_account_file: .* is not JSON/],
    ];
    for (const [toml, expected] of cases) {
      const result = await runCli(['serve', '--port', '0', '--data', join(dir, 'data'), '--config', writeConfig(dir, toml)]);
      assert.equal(result.code, 1, toml);
      assert.match(result.stderr, expected);
    }
    const account = join(dir, 'account.json');
    writeFileSync(account, JSON.stringify({ project_id: 'p', client_email: 'e@example.com' }));
    const noKey = await runCli(['serve', '--port', '0', '--data', join(dir, 'data'), '--config', writeConfig(dir, `[fcm]\nservice_account_file = "${account}"`)]);
    assert.match(noKey.stderr, /fcm\.service_account_file: .* has no "private_key"/);
  });
});
