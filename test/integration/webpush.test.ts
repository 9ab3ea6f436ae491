import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { TestAccount, approvedDevice, envelope, loadSodium } from '../helpers/e2e.js';
import { request, signUp } from '../helpers/http.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { startPostgres } from '../helpers/postgres.js';
import { PushService, type TestBrowser } from '../helpers/push-service.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * Web Push through the real `web-push` library, against a local HTTPS push
 * service that checks the VAPID signature and decrypts every payload with the
 * subscribing browser's private key. One notification waits for the push
 * service at a time (push.concurrency = 1), so the queue is worked in order.
 */

interface World {
  readonly dir: string;
  readonly data: string;
  readonly service: PushService;
  readonly configFile: string;
  readonly env: Record<string, string>;
  server: ServerProcess;
}

const cleanups: Array<() => Promise<unknown>> = [];
after(() => Promise.all(cleanups.map((cleanup) => cleanup())));

function config(webpush: string): string {
  return `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[push]
concurrency = 1
retry_base_ms = 20
request_timeout_ms = 5000
max_attempts = 5
[webpush]
allowed_hosts = "127.0.0.1"
${webpush}
`;
}

async function world(webpush = '', extraEnv: Record<string, string> = {}): Promise<World> {
  const dir = tempDir();
  const service = await PushService.start(dir);
  const configFile = writeConfig(dir, config(webpush));
  const env = { NODE_EXTRA_CA_CERTS: service.certFile, ...extraEnv };
  const data = join(dir, 'data');
  const server = await startServer(['--data', data, '--config', configFile], { env });
  const w: World = { dir, data, service, configFile, env, server };
  cleanups.push(async () => {
    await w.server.stop();
    await service.close();
  });
  return w;
}

let names = 0;
async function user(w: World, prefix: string, browser?: TestBrowser): Promise<{ id: number; token: string; deviceId: number; name: string }> {
  const name = `${prefix}${++names}`;
  const signed = await signUp(w.server.url, name, 'correct horse', 'browser');
  if (browser) {
    const registered = await request(`${w.server.url}/v1/me/push`, { method: 'PUT', token: signed.token, body: { platform: 'webpush', token: browser.token } });
    assert.equal(registered.status, 200, JSON.stringify(registered.body));
    assert.deepEqual(registered.body, { push: { platform: 'webpush', topic: null } });
  }
  return { ...signed, id: signed.userId, name };
}

let sends = 0;
async function send(socket: TestSocket, threadId: number, body: unknown, kind: 'text' | 'e2e' = 'text'): Promise<any> {
  return socket.expect({ type: 'send', thread_id: threadId, client_msg_id: `m${++sends}`, kind, body }, 'ack');
}

async function direct(socket: TestSocket, userId: number): Promise<number> {
  return (await socket.expect({ type: 'direct_open', user_id: userId }, 'thread')).thread.id;
}

function pushRow(w: World, deviceId: number): { push_platform: string | null; push_token: string | null } {
  const db = new Database(join(w.data, 'chatd.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT push_platform, push_token FROM devices WHERE id = ?').get(deviceId) as { push_platform: string | null; push_token: string | null };
  } finally {
    db.close();
  }
}

describe('Web Push', () => {
  it('an offline browser gets the message, encrypted to it and signed with the server\'s VAPID key; an e2e message carries no plaintext', async () => {
    const w = await world();
    const key = await request(`${w.server.url}/v1/push/webpush`);
    assert.equal(key.status, 200);
    assert.equal(Buffer.from(key.body.public_key, 'base64url').length, 65);
    const browser = w.service.browser();
    const bob = await user(w, 'bob', browser);
    assert.deepEqual((await request(`${w.server.url}/v1/me/push`, { token: bob.token })).body, { push: { platform: 'webpush', topic: null } });
    const alice = await user(w, 'alice');
    const a = await connectAuthenticated(w.server.wsUrl, alice.token);
    const thread = await direct(a.socket, bob.id);
    await send(a.socket, thread, { text: 'see you at 9' });
    const [plain] = await w.service.waitForDeliveries(1);
    assert.equal(plain?.browserId, browser.id);
    assert.deepEqual(plain?.payload, { title: alice.name, body: 'see you at 9', tag: `thread-${thread}`, badge: 1, thread_id: thread, seq: plain?.payload.seq, message_id: plain?.payload.message_id, encrypted: false });
    assert.equal(plain?.vapidKey, key.body.public_key);
    assert.equal(plain?.claims.aud, w.service.origin);
    assert.match(String(plain?.claims.sub), /^mailto:/);
    assert.equal(plain?.urgency, 'high');
    assert.equal(plain?.contentEncoding, 'aes128gcm');
    assert.equal(plain?.topic, `thread-${thread}`);
    // TTL: what is left of push.max_age_seconds (default 1 day).
    assert.ok(plain!.ttl > 86_000 && plain!.ttl <= 86_400, `TTL ${plain?.ttl}`);

    await loadSodium();
    await approvedDevice(a.socket, alice.id, alice.deviceId, new TestAccount(alice.id));
    const sealed = envelope(alice.deviceId, [alice.deviceId]);
    await send(a.socket, thread, sealed, 'e2e');
    const [, e2e] = await w.service.waitForDeliveries(2);
    assert.deepEqual(e2e?.payload, { body: 'New message', tag: `thread-${thread}`, badge: 2, thread_id: thread, seq: e2e?.payload.seq, message_id: e2e?.payload.message_id, encrypted: true });
    assert.doesNotMatch(e2e!.plaintext, new RegExp(alice.name));
    assert.doesNotMatch(e2e!.plaintext, /see you at 9/);
    assert.ok(!e2e!.plaintext.includes(String(sealed.ciphertext).slice(0, 16)));
    assert.deepEqual(w.service.refusals, []);
    a.socket.close();
  });

  it('a subscription the push service calls gone (410) or unknown (404) is removed, and gets no more notifications', async () => {
    const w = await world();
    const gone = w.service.browser();
    const unknown = w.service.browser();
    const kept = w.service.browser();
    w.service.answer(gone, [{ status: 410 }]);
    w.service.answer(unknown, [{ status: 404 }]);
    const bob = await user(w, 'bob', gone);
    const carol = await user(w, 'carol', unknown);
    const dave = await user(w, 'dave', kept);
    assert.equal(pushRow(w, bob.deviceId).push_platform, 'webpush');
    const alice = await user(w, 'alice');
    const a = await connectAuthenticated(w.server.wsUrl, alice.token);
    const toBob = await direct(a.socket, bob.id);
    await send(a.socket, toBob, { text: 'to bob' });
    await send(a.socket, await direct(a.socket, carol.id), { text: 'to carol' });
    await w.service.waitForDeliveries(2);
    for (const device of [bob.deviceId, carol.deviceId]) {
      await w.server.waitForLog((line) => line.msg === 'push token removed: the provider says it is no longer valid' && line.device === device);
      assert.deepEqual(pushRow(w, device), { push_platform: null, push_token: null });
    }
    for (const gone of [bob, carol]) assert.deepEqual((await request(`${w.server.url}/v1/me/push`, { token: gone.token })).body, { push: null });
    // Bob's next message goes nowhere; Dave's, sent after it, is the next the push service sees.
    await send(a.socket, toBob, { text: 'to bob again' });
    await send(a.socket, await direct(a.socket, dave.id), { text: 'to dave' });
    const [, , third] = await w.service.waitForDeliveries(3);
    assert.equal(third?.browserId, kept.id);
    assert.equal(third?.payload.body, 'to dave');
    assert.equal(w.service.deliveries.entries.length, 3);
    a.socket.close();
  });

  it('429 with Retry-After and 500 are retried; the 429 not before the time it asked for', async () => {
    const w = await world();
    const browser = w.service.browser();
    w.service.answer(browser, [{ status: 429, headers: { 'retry-after': '2' } }, { status: 500 }]);
    const bob = await user(w, 'bob', browser);
    const alice = await user(w, 'alice');
    const a = await connectAuthenticated(w.server.wsUrl, alice.token);
    await send(a.socket, await direct(a.socket, bob.id), { text: 'try again' });
    const [limited, failed, sent] = await w.service.waitForDeliveries(3);
    assert.deepEqual([limited?.status, failed?.status, sent?.status], [429, 500, 201]);
    assert.equal(sent?.payload.body, 'try again');
    // The wait the 429 asked for held that subscription (not the provider), and the retry was scheduled no sooner
    // (what was recorded, not a measured time).
    await w.server.waitForLog((line) => String(line.msg).startsWith('push subscription asked to wait (Retry-After)') && line.retry_after_ms === 2000 && line.device === bob.deviceId);
    const retried = await w.server.waitForLog((line) => line.msg === 'push failed for now; will retry' && line.device === bob.deviceId && /Web Push 429/.test(String(line.reason)));
    assert.ok(Number(retried.retry_in_ms) >= 2000, `retry scheduled ${retried.retry_in_ms} ms ahead for a Retry-After of 2 s`);
    assert.equal(pushRow(w, bob.deviceId).push_platform, 'webpush', 'a transient failure keeps the subscription');
    a.socket.close();
  });

  it('one user\'s subscriptions cannot hold Web Push for others: a 401 pauses nothing, a Retry-After of an hour holds that subscription only', async () => {
    const w = await world();
    // Mallory subscribed with another VAPID key (Mozilla's answer: 401); Eve's endpoint asks for an hour's wait.
    const mallorys = w.service.browser();
    const eves = w.service.browser();
    const bobs = w.service.browser();
    w.service.answer(mallorys, () => ({ status: 401 }));
    w.service.answer(eves, () => ({ status: 429, headers: { 'retry-after': '3600' } }));
    const mallory = await user(w, 'mallory', mallorys);
    const eve = await user(w, 'eve', eves);
    const bob = await user(w, 'bob', bobs);
    const alice = await user(w, 'alice');
    const a = await connectAuthenticated(w.server.wsUrl, alice.token);
    await send(a.socket, await direct(a.socket, mallory.id), { text: 'to mallory' });
    await w.service.waitForDeliveries(1);
    await send(a.socket, await direct(a.socket, eve.id), { text: 'to eve' });
    await w.server.waitForLog((line) => String(line.msg).startsWith('push subscription asked to wait') && line.device === eve.deviceId);
    await send(a.socket, await direct(a.socket, bob.id), { text: 'to bob' });
    let count = 1;
    while (!w.service.deliveries.entries.some((delivery) => delivery.browserId === bobs.id)) await w.service.waitForDeliveries(++count);
    const toBob = w.service.deliveries.entries.find((delivery) => delivery.browserId === bobs.id);
    assert.equal(toBob?.status, 201);
    assert.equal(toBob?.payload.body, 'to bob');
    const wait = w.server.logs.find((line) => String(line.msg).startsWith('push subscription asked to wait'));
    assert.equal(wait?.retry_after_ms, 300_000, 'the hour is capped at 5 minutes');
    assert.equal(w.server.logs.filter((line) => String(line.msg).startsWith('push provider')).length, 0, 'Web Push was neither paused nor held');
    assert.equal(w.service.deliveries.entries.filter((delivery) => delivery.browserId === eves.id).length, 1, 'Eve\'s subscription waits');
    a.socket.close();
  });

  it('a 403 for one subscription (made with another VAPID key) holds no other browser; it is removed once the service has accepted one', async () => {
    const w = await world();
    const stale = w.service.browser();
    const fresh = w.service.browser();
    w.service.answer(stale, () => ({ status: 403 }));
    const mallory = await user(w, 'mallory', stale);
    const bob = await user(w, 'bob', fresh);
    const alice = await user(w, 'alice');
    const a = await connectAuthenticated(w.server.wsUrl, alice.token);
    const toMallory = await direct(a.socket, mallory.id);
    await send(a.socket, toMallory, { text: 'to mallory' });
    const [refused] = await w.service.waitForDeliveries(1);
    assert.equal(refused?.status, 403);
    // Nothing accepted since the start: the subscription is kept for now, and the provider is not paused.
    await w.server.waitForLog((line) => String(line.msg).startsWith('push token kept for now') && line.device === mallory.deviceId);
    await send(a.socket, await direct(a.socket, bob.id), { text: 'to bob' });
    // Mallory's retries may come between: wait for the service's requests until bob's is among them (or it times out).
    let toBob;
    for (let count = 2; !toBob; count++) toBob = (await w.service.waitForDeliveries(count)).find((delivery) => delivery.browserId === fresh.id);
    assert.equal(toBob?.status, 201);
    assert.equal(toBob?.payload.body, 'to bob');
    // The service has accepted a notification: the next 403 removes that subscription, as a gone one.
    await send(a.socket, toMallory, { text: 'to mallory again' });
    await w.server.waitForLog((line) => line.msg === 'push token removed: the provider says it is no longer valid' && line.device === mallory.deviceId);
    assert.deepEqual(pushRow(w, mallory.deviceId), { push_platform: null, push_token: null });
    assert.equal(pushRow(w, bob.deviceId).push_platform, 'webpush');
    a.socket.close();
  });

  it('refuses registrations it could not or must not send to, with the part at fault named, and keeps the previous one', async () => {
    const w = await world();
    const browser = w.service.browser();
    const bob = await user(w, 'bob', browser);
    const put = (token: unknown) => request(`${w.server.url}/v1/me/push`, { method: 'PUT', token: bob.token, body: { platform: 'webpush', token } });
    const sub = browser.subscription;
    const cases: Array<[unknown, RegExp]> = [
      ['{"endpoint": "https://127.0.0.1/', /not JSON/],
      [JSON.stringify({ ...sub, endpoint: sub.endpoint.replace('https:', 'http:') }), /endpoint must be an https URL/],
      [JSON.stringify({ ...sub, endpoint: 'https://10.0.0.1/push/x' }), /endpoint host 10\.0\.0\.1 is not a push service this server sends to \(webpush\.allowed_hosts: 127\.0\.0\.1\)/],
      [JSON.stringify({ ...sub, endpoint: 'https://localhost/push/x' }), /endpoint host localhost/],
      [JSON.stringify({ ...sub, keys: { ...sub.keys, p256dh: 'AAAA' } }), /keys\.p256dh must be/],
      [JSON.stringify({ ...sub, keys: { p256dh: sub.keys.p256dh } }), /keys\.auth is required/],
      [JSON.stringify({ endpoint: sub.endpoint }), /keys is required/],
    ];
    for (const [token, message] of cases) {
      const refused = await put(token);
      assert.equal(refused.status, 400, String(token));
      assert.equal(refused.body.error.code, 'invalid_field');
      assert.equal(refused.body.error.field, 'token');
      assert.match(refused.body.error.message, message);
    }
    // Too long for any subscription: refused by the codec before the service looks.
    assert.equal((await put(`{"endpoint":"${'x'.repeat(5000)}"}`)).status, 400);
    // Over the WebSocket, the same rules.
    const b = await connectAuthenticated(w.server.wsUrl, bob.token);
    const reply = await b.socket.request({ type: 'push_register', platform: 'webpush', token: JSON.stringify({ ...sub, endpoint: 'https://internal.example/x' }) });
    assert.equal(reply.type, 'error');
    assert.equal((reply as any).error.code, 'invalid_field');
    assert.match((reply as any).error.message, /internal\.example/);
    const ok = await b.socket.request({ type: 'push_register', platform: 'webpush', token: browser.token });
    assert.equal(ok.type, 'ok');
    b.socket.close();
    const stored = pushRow(w, bob.deviceId);
    assert.equal(stored.push_platform, 'webpush');
    assert.deepEqual(JSON.parse(stored.push_token!), sub);
  });

  it('webpush.enabled = false: no public key (404), and the kind is refused', async () => {
    const w = await world('enabled = false');
    const key = await request(`${w.server.url}/v1/push/webpush`);
    assert.equal(key.status, 404);
    assert.match(key.body.error.message, /webpush\.enabled is false/);
    const bob = await user(w, 'bob');
    const refused = await request(`${w.server.url}/v1/me/push`, { method: 'PUT', token: bob.token, body: { platform: 'webpush', token: w.service.browser().token } });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.field, 'platform');
    assert.match(refused.body.error.message, /no Web Push notifications: webpush\.enabled is false/);
    assert.throws(() => statSync(join(w.data, 'vapid.json')), /ENOENT/, 'no key pair made when Web Push is off');
  });

  it('the VAPID key pair is made at the first start (0600) and kept across a restart: old subscriptions keep working', async () => {
    const w = await world();
    const file = join(w.data, 'vapid.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const first = (await request(`${w.server.url}/v1/push/webpush`)).body.public_key;
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).public_key, first);
    const browser = w.service.browser();
    const bob = await user(w, 'bob', browser);
    await w.server.stop();
    w.server = await startServer(['--data', w.data, '--config', w.configFile], { env: w.env });
    assert.equal((await request(`${w.server.url}/v1/push/webpush`)).body.public_key, first);
    const alice = await user(w, 'alice');
    const a = await connectAuthenticated(w.server.wsUrl, alice.token);
    await send(a.socket, await direct(a.socket, bob.id), { text: 'after the restart' });
    const [delivery] = await w.service.waitForDeliveries(1);
    assert.equal(delivery?.vapidKey, first);
    assert.equal(delivery?.payload.body, 'after the restart');
    a.socket.close();
  });

  it('on PostgreSQL too: a webpush device is queued, sent to, and removed when gone; the pair made at the first start is logged with the several-nodes warning', async () => {
    const postgres = await startPostgres();
    cleanups.push(() => postgres.stop());
    const w = await world('', { CHATD_STORAGE_URL: await postgres.freshDatabase() });
    await w.server.waitForLog((line) => /every node needs the same VAPID key pair/.test(String(line.msg)));
    const browser = w.service.browser();
    w.service.answer(browser, [{ status: 201 }, { status: 410 }]);
    const bob = await user(w, 'bob', browser);
    const alice = await user(w, 'alice');
    const a = await connectAuthenticated(w.server.wsUrl, alice.token);
    const thread = await direct(a.socket, bob.id);
    await send(a.socket, thread, { text: 'over postgres' });
    const [first] = await w.service.waitForDeliveries(1);
    assert.equal(first?.payload.body, 'over postgres');
    await send(a.socket, thread, { text: 'again' });
    await w.service.waitForDeliveries(2);
    await w.server.waitForLog((line) => line.msg === 'push token removed: the provider says it is no longer valid' && line.device === bob.deviceId);
    assert.deepEqual((await request(`${w.server.url}/v1/me/push`, { token: bob.token })).body, { push: null });
    a.socket.close();
  });

  it('chatd push vapid writes a pair (0600) and prints its public key; it never replaces one without --force; the server uses it', async () => {
    const dir = tempDir();
    const out = join(dir, 'keys.json');
    const made = await runCli(['push', 'vapid', '--out', out, '--json']);
    assert.equal(made.code, 0, made.stderr);
    const printed = JSON.parse(made.stdout);
    assert.deepEqual(printed, { public_key: printed.public_key, file: out });
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(JSON.parse(readFileSync(out, 'utf8')).public_key, printed.public_key);
    assert.doesNotMatch(made.stdout, new RegExp(JSON.parse(readFileSync(out, 'utf8')).private_key));
    const again = await runCli(['push', 'vapid', '--out', out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`exists; its public key is ${printed.public_key}\\. Not replaced.*--force`));
    assert.equal(JSON.parse(readFileSync(out, 'utf8')).public_key, printed.public_key, 'left as it was');
    const forced = await runCli(['push', 'vapid', '--out', out, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    const replaced = JSON.parse(readFileSync(out, 'utf8')).public_key;
    assert.notEqual(replaced, printed.public_key);
    assert.match(forced.stdout, new RegExp(`public key: ${replaced}`));
    // Into a data directory that does not exist yet: the server finds it there at its first start.
    const data = join(dir, 'data');
    const forData = await runCli(['push', 'vapid', '--data', data, '--json']);
    assert.equal(forData.code, 0, forData.stderr);
    const key = JSON.parse(forData.stdout).public_key;
    const server = await startServer(['--data', data]);
    cleanups.push(() => server.stop());
    assert.equal((await request(`${server.url}/v1/push/webpush`)).body.public_key, key);
    // webpush.vapid_file names a pair to use; a missing one stops the start with the setting named.
    const named = await startServer(['--data', join(dir, 'other')], { env: { CHATD_WEBPUSH_VAPID_FILE: out } });
    cleanups.push(() => named.stop());
    assert.equal((await request(`${named.url}/v1/push/webpush`)).body.public_key, replaced);
    await assert.rejects(startServer(['--data', join(dir, 'third')], { env: { CHATD_WEBPUSH_VAPID_FILE: join(dir, 'missing.json') } }), /webpush\.vapid_file: cannot read .*ENOENT/);
  });
});
