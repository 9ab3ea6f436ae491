import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WebPushError } from 'web-push';
import { ChatError, StartupError } from '../../src/errors.js';
import { notificationFor, webPushPayload } from '../../src/push/content.js';
import { generateVapidKeys, keysOf, loadVapidKeys, readVapidFile, writeVapidFile } from '../../src/push/vapid.js';
import { isSuspect } from '../../src/push/provider-gate.js';
import { classify, retryAfterOf } from '../../src/push/webpush.js';
import { PushTokenService } from '../../src/services/push-tokens.js';
import type { Principal } from '../../src/services/types.js';
import type { PushRegistration, PushTokensStorage } from '../../src/storage/ports/push.js';
import { allowedHostsOf, hostAllowed, parseWebPushSubscription } from '../../src/services/webpush-subscription.js';
import { tempDir } from '../helpers/tmp.js';

function browserKeys() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { p256dh: ecdh.getPublicKey('base64url', 'uncompressed'), auth: randomBytes(16).toString('base64url') };
}

const HOSTS = allowedHostsOf('fcm.googleapis.com, *.push.services.mozilla.com,,127.0.0.1');

function refusal(token: string): string {
  try {
    parseWebPushSubscription(token, HOSTS);
  } catch (error) {
    assert.ok(error instanceof ChatError);
    assert.equal(error.code, 'invalid_field');
    assert.equal(error.field, 'token');
    return error.message;
  }
  assert.fail(`accepted ${token}`);
}

describe('Web Push subscriptions', () => {
  it('accepts PushSubscription.toJSON() and stores it canonical: endpoint and keys only, padding dropped', () => {
    const keys = browserKeys();
    const stored = parseWebPushSubscription(
      JSON.stringify({ expirationTime: null, keys: { auth: `${keys.auth}==`, p256dh: keys.p256dh }, endpoint: 'https://fcm.googleapis.com/fcm/send/abc:def' }),
      HOSTS,
    );
    assert.equal(stored, JSON.stringify({ endpoint: 'https://fcm.googleapis.com/fcm/send/abc:def', keys: { p256dh: keys.p256dh, auth: keys.auth } }));
  });

  it('allows exact hosts and *. subdomains only', () => {
    assert.deepEqual(HOSTS, ['fcm.googleapis.com', '*.push.services.mozilla.com', '127.0.0.1']);
    assert.equal(hostAllowed('updates.push.services.mozilla.com', HOSTS), true);
    assert.equal(hostAllowed('a.b.push.services.mozilla.com', HOSTS), true);
    assert.equal(hostAllowed('push.services.mozilla.com', HOSTS), false);
    assert.equal(hostAllowed('evilpush.services.mozilla.com', HOSTS), false);
    assert.equal(hostAllowed('fcm.googleapis.com.evil.example', HOSTS), false);
    assert.equal(hostAllowed('127.0.0.1', HOSTS), true);
    assert.equal(hostAllowed('localhost', HOSTS), false);
  });

  it('refuses, naming the part at fault: not JSON, no endpoint, http, a host not allowed, credentials in the URL, bad keys', () => {
    const keys = browserKeys();
    const sub = (endpoint: unknown, k: unknown = keys) => JSON.stringify({ endpoint, keys: k });
    assert.match(refusal('{"endpoint":'), /not JSON/);
    assert.match(refusal('[]'), /JSON object/);
    assert.match(refusal(JSON.stringify({ keys })), /endpoint is required/);
    assert.match(refusal(sub('not a url')), /endpoint is not a URL/);
    assert.match(refusal(sub('http://fcm.googleapis.com/fcm/send/x')), /endpoint must be an https URL \(got http\)/);
    assert.match(refusal(sub('https://169.254.169.254/latest/meta-data')), /endpoint host 169\.254\.169\.254 is not a push service.*webpush\.allowed_hosts/);
    assert.match(refusal(sub('https://internal.example/x')), /endpoint host internal\.example/);
    assert.match(refusal(sub('https://user:pw@fcm.googleapis.com/x')), /user name or password/);
    assert.match(refusal(sub(`https://fcm.googleapis.com/${'x'.repeat(2100)}`)), /longer than 2048/);
    const endpoint = 'https://fcm.googleapis.com/fcm/send/x';
    assert.match(refusal(JSON.stringify({ endpoint })), /keys is required/);
    assert.match(refusal(sub(endpoint, { auth: keys.auth })), /keys\.p256dh is required/);
    assert.match(refusal(sub(endpoint, { p256dh: keys.p256dh.slice(0, 40), auth: keys.auth })), /keys\.p256dh must be .*65 bytes.*decodes to 30 bytes/);
    assert.match(refusal(sub(endpoint, { p256dh: `${keys.p256dh}AAAA`, auth: keys.auth })), /keys\.p256dh must be/);
    assert.match(refusal(sub(endpoint, { p256dh: keys.p256dh.replace(/^./, '+'), auth: keys.auth })), /keys\.p256dh must be .*base64url/);
    const offCurve = Buffer.from(keys.p256dh, 'base64url');
    offCurve[40] = (offCurve[40] ?? 0) ^ 1;
    assert.match(refusal(sub(endpoint, { p256dh: offCurve.toString('base64url'), auth: keys.auth })), /keys\.p256dh is not a point on the P-256 curve/);
    assert.match(refusal(sub(endpoint, { p256dh: keys.p256dh })), /keys\.auth is required/);
    assert.match(refusal(sub(endpoint, { p256dh: keys.p256dh, auth: randomBytes(15).toString('base64url') })), /keys\.auth must be .*16-byte/);
  });
});

describe('Web Push provider', () => {
  const error = (status: number, headers: Record<string, string> = {}) => new WebPushError('Received unexpected response code', status, headers, 'why', 'https://x');

  it('classifies push service answers: 404/410 dead, 401/403 a suspect dead token, 429/5xx retry with Retry-After, other failed', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(classify(error(410), now).kind, 'dead_token');
    assert.equal(classify(error(404), now).kind, 'dead_token');
    assert.deepEqual(classify(error(429, { 'retry-after': '7' }), now), { kind: 'retry', reason: 'Web Push 429: why', retryAfterMs: 7000 });
    assert.deepEqual(classify(error(503, { 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' }), now), { kind: 'retry', reason: 'Web Push 503: why', retryAfterMs: 30_000 });
    assert.deepEqual(classify(error(500), now), { kind: 'retry', reason: 'Web Push 500: why' });
    // RFC 8292 §4.2: a 403 is about the subscription (made with another key); suspect, since a new key pair makes every one answer so.
    const forbidden = classify(error(403), now);
    assert.equal(forbidden.kind, 'dead_token');
    assert.ok(isSuspect(forbidden), 'a 403 for every subscription trips the dead-token breaker instead of removing them all');
    // A 401 too (Mozilla's autopush answers so for a subscription made with another key): the endpoint is the
    // user's choice, so its answer never pauses Web Push on its own say; only the breaker does, across users.
    const unauthorized = classify(error(401), now);
    assert.equal(unauthorized.kind, 'dead_token');
    assert.ok(isSuspect(unauthorized));
    assert.match((unauthorized as { reason: string }).reason, /VAPID/);
    assert.equal(classify(error(413), now).kind, 'failed');
    assert.equal(classify(error(400), now).kind, 'failed');
    assert.equal(classify(new Error('socket hang up'), now).kind, 'retry');
    assert.equal(retryAfterOf('soon', now), undefined);
    assert.equal(retryAfterOf(undefined, now), undefined);
  });

  it('the payload carries the notification only: an e2e thread has no text and no sender', () => {
    const message = { threadId: 7, messageId: 70, seq: 3, attachments: null, senderName: 'Alice', threadKind: 'group' as const, threadTitle: 'Climbing', createdAt: 1_000 };
    const plain = webPushPayload(notificationFor({ ...message, kind: 'text', body: JSON.stringify({ text: 'see you at 9' }) }, 4, { preview: true, maxAgeMs: 60_000 }));
    assert.deepEqual(plain, { title: 'Climbing', body: 'Alice: see you at 9', tag: 'thread-7', badge: 4, thread_id: 7, seq: 3, message_id: 70, encrypted: false });
    const e2e = webPushPayload(notificationFor({ ...message, kind: 'e2e', body: JSON.stringify({ text: 'secret words' }), mentioned: true }, 4, { preview: true, maxAgeMs: 60_000 }));
    assert.deepEqual(e2e, { body: 'You were mentioned', tag: 'thread-7', badge: 4, thread_id: 7, seq: 3, message_id: 70, encrypted: true, mentioned: true });
    assert.doesNotMatch(JSON.stringify(e2e), /secret|Alice|Climbing/);
  });
});

describe('VAPID keys', () => {
  it('are made once in the data directory (0600) and read back the same', () => {
    const dir = join(tempDir(), 'data');
    const first = loadVapidKeys('', dir);
    assert.equal(first.made, true);
    assert.equal(statSync(first.path).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(Buffer.from(first.keys.publicKey, 'base64url').length, 65);
    const again = loadVapidKeys('', dir);
    assert.equal(again.made, false);
    assert.deepEqual(again.keys, first.keys);
  });

  it('keep a private scalar with a leading zero byte at 32 bytes, written and read back (1 key in 256 has one)', () => {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.concat([Buffer.alloc(1), randomBytes(31)]));
    assert.equal(ecdh.getPrivateKey().length <= 31, true, "Node drops the leading zero: what this test is about");
    const keys = keysOf(ecdh);
    assert.equal(Buffer.from(keys.privateKey, 'base64url').length, 32);
    const path = join(tempDir(), 'vapid.json');
    assert.equal(writeVapidFile(path, keys), true);
    assert.deepEqual(readVapidFile(path, 'webpush.vapid_file'), keys);
    // A file holding the short form (as Node gives it) is read as the same pair.
    const short = join(tempDir(), 'short.json');
    writeFileSync(short, JSON.stringify({ public_key: keys.publicKey, private_key: ecdh.getPrivateKey('base64url') }));
    assert.deepEqual(readVapidFile(short, 'webpush.vapid_file'), keys);
  });

  it('a named file must exist and hold a pair; a mismatched pair is refused naming the file', () => {
    const dir = tempDir();
    assert.throws(() => loadVapidKeys(join(dir, 'missing.json'), dir), (e: unknown) => e instanceof StartupError && /webpush\.vapid_file: cannot read .*ENOENT/.test(e.message));
    const a = generateVapidKeys();
    const b = generateVapidKeys();
    const mixed = join(dir, 'mixed.json');
    writeFileSync(mixed, JSON.stringify({ public_key: a.publicKey, private_key: b.privateKey }));
    assert.throws(() => readVapidFile(mixed, 'webpush.vapid_file'), /public_key in .* is not the private_key's/);
    const camel = join(dir, 'camel.json');
    writeFileSync(camel, JSON.stringify(a));
    assert.deepEqual(readVapidFile(camel, 'webpush.vapid_file'), a);
  });

  it('writing never replaces a pair unless asked to', () => {
    const file = join(tempDir(), 'vapid.json');
    const a = generateVapidKeys();
    assert.equal(writeVapidFile(file, a), true);
    assert.equal(writeVapidFile(file, generateVapidKeys()), false);
    assert.deepEqual(readVapidFile(file, 'f'), a);
    const b = generateVapidKeys();
    assert.equal(writeVapidFile(file, b, { overwrite: true }), true);
    assert.deepEqual(readVapidFile(file, 'f'), b);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(readFileSync(file, 'utf8'), /"public_key"/);
  });
});

describe('PushTokenService with webpush', () => {
  const principal = { deviceId: 7 } as unknown as Principal;
  const stored: Array<[number, PushRegistration]> = [];
  const storage: PushTokensStorage = {
    registerPushToken: async (deviceId, registration) => void stored.push([deviceId, registration]),
    unregisterPushToken: async () => {},
    pushRegistration: async () => undefined,
  };
  const keys = browserKeys();
  const token = JSON.stringify({ endpoint: 'https://fcm.googleapis.com/fcm/send/x', keys });

  it('stores the canonical subscription; refuses a topic, and the kind when webpush is off', async () => {
    const on = new PushTokenService({ storage, enabled: { apns: false, fcm: false, webpush: true }, webPushHosts: HOSTS });
    assert.deepEqual(await on.register(principal, { platform: 'webpush', token: ` ${token}`, topic: undefined }), { platform: 'webpush', token, topic: null });
    assert.deepEqual(stored, [[7, { platform: 'webpush', token, topic: null }]]);
    await assert.rejects(on.register(principal, { platform: 'webpush', token, topic: 'org.example' }), (e: unknown) => e instanceof ChatError && e.field === 'topic');
    const off = new PushTokenService({ storage, enabled: { apns: true, fcm: true }, webPushHosts: HOSTS });
    await assert.rejects(off.register(principal, { platform: 'webpush', token, topic: undefined }), (e: unknown) => e instanceof ChatError && e.field === 'platform' && /webpush\.enabled is false/.test(e.message));
    assert.equal(stored.length, 1, 'nothing stored by a refusal');
  });
});
