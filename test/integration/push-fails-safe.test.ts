import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request, signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
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
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/*
 * Push that fails safe (issue 22; review M4, M7, L5), through the real
 * node-apn and firebase-admin against the local stand-ins: a refusal of the
 * whole server (FCM 403 PERMISSION_DENIED for every token; APNs
 * DeviceTokenNotForTopic for every token, as a bundle_id typo gives) removes no
 * registration, pauses the provider with one error line, and everything is
 * delivered once the stand-in is fixed; a failure to fetch FCM's access token
 * is retried; FCM's Retry-After is read and waited for.
 */

const BUNDLE_ID = 'org.example.chat';
const PROJECT = 'chatd-test';
const apnsToken = (n: number): string => n.toString(16).padStart(64, 'e');
const fcmToken = (n: number): string => `fcm-safe-${n}-${'y'.repeat(40)}`;

interface World {
  readonly apns: FakeApns;
  readonly fcm: FakeFcm;
  readonly server: ServerProcess;
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

async function world(push: string): Promise<World> {
  const dir = tempDir();
  const apns = await startFakeApns(pki);
  const fcm = await startFakeFcm(pki, { serviceAccountFile: serviceAccount });
  const configFile = writeConfig(
    dir,
    `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[push]
concurrency = 1
retry_base_ms = 20
${push.includes('request_timeout_ms') ? '' : 'request_timeout_ms = 2000'}
${push}
[apns]
key_file = "${pki.apnsKeyFile}"
key_id = "${APNS_KEY_ID}"
team_id = "${APNS_TEAM_ID}"
bundle_id = "${BUNDLE_ID}"
environment = "sandbox"
connect_to = "localhost:${apns.port}"
[fcm]
service_account_file = "${serviceAccount}"
connect_to = "127.0.0.1:${fcm.port}"
`,
  );
  const server = await startServer(['--data', join(dir, 'data'), '--config', configFile], { env: { NODE_EXTRA_CA_CERTS: pki.caFile } });
  cleanups.push(async () => {
    await server.stop();
    await Promise.all([apns.close(), fcm.close()]);
  });
  return { apns, fcm, server };
}

let names = 0;
async function offlineUser(w: World, push: { platform: 'apns' | 'fcm'; token: string }): Promise<{ id: number; token: string; deviceId: number }> {
  const user = await signUp(w.server.url, `safe${++names}`, 'correct horse', 'phone');
  const registered = await request(`${w.server.url}/v1/me/push`, { method: 'PUT', token: user.token, body: push });
  assert.equal(registered.status, 200, JSON.stringify(registered.body));
  return { id: user.userId, token: user.token, deviceId: user.deviceId };
}

let sends = 0;
async function sendTo(socket: TestSocket, userId: number, text: string): Promise<void> {
  const thread = (await socket.expect({ type: 'direct_open', user_id: userId }, 'thread')).thread.id;
  await socket.expect({ type: 'send', thread_id: thread, client_msg_id: `safe${++sends}`, kind: 'text', body: { text } }, 'ack');
}

async function sender(w: World): Promise<TestSocket> {
  const alice = await signUp(w.server.url, `alice${++names}`, 'correct horse', 'laptop');
  return (await connectAuthenticated(w.server.wsUrl, alice.token)).socket;
}

const paused = (platform: string) => (line: Record<string, unknown>) => String(line.msg).startsWith('push provider paused') && line.platform === platform;

describe('push that fails safe', { timeout: 120_000 }, () => {
  it('FCM 403 PERMISSION_DENIED and APNs DeviceTokenNotForTopic for every token keep every registration, pause each provider with one error line, and deliver once fixed', async () => {
    const w = await world('breaker_dead_tokens = 2');
    // The FCM API disabled for the project: a 403 with only the canonical status. A bundle_id typo: every token "not for topic".
    w.fcm.respondWith(() => ({ status: 403 }));
    w.apns.respondWith(() => ({ status: 400, reason: 'DeviceTokenNotForTopic' }));
    const users = [
      await offlineUser(w, { platform: 'fcm', token: fcmToken(1) }),
      await offlineUser(w, { platform: 'fcm', token: fcmToken(2) }),
      await offlineUser(w, { platform: 'apns', token: apnsToken(1) }),
      await offlineUser(w, { platform: 'apns', token: apnsToken(2) }),
    ];
    const a = await sender(w);
    for (const user of users) await sendTo(a, user.id, `hello ${user.id}`);
    const fcmPause = await w.server.waitForLog(paused('fcm'));
    const apnsPause = await w.server.waitForLog(paused('apns'));
    assert.equal(fcmPause.level, 50);
    assert.match(String(fcmPause.reason), /mismatched-credential/);
    assert.match(String(fcmPause.check), /Firebase Cloud Messaging API/);
    assert.equal(apnsPause.level, 50);
    assert.match(String(apnsPause.reason), /DeviceTokenNotForTopic/);
    assert.match(String(apnsPause.check), /apns\.bundle_id/);
    for (const user of users) {
      assert.notDeepEqual((await request(`${w.server.url}/v1/me/push`, { token: user.token })).body, { push: null }, `device ${user.deviceId} keeps its token`);
    }
    assert.equal(w.server.logs.filter((line) => String(line.msg).startsWith('push token removed')).length, 0);

    // Fixed (the stand-ins accept again): the next probes are accepted and every notification goes out.
    w.fcm.respondWith(() => undefined);
    w.apns.respondWith(() => undefined);
    await w.server.waitForLog((line) => String(line.msg).startsWith('push provider resumed') && line.platform === 'fcm', 20_000);
    await w.server.waitForLog((line) => String(line.msg).startsWith('push provider resumed') && line.platform === 'apns', 20_000);
    const delivered = async (): Promise<Set<string>> =>
      new Set([
        ...w.fcm.requests.filter((r) => r.reply !== 'hang' && r.reply.status === 200).map((r) => String(r.message.token)),
        ...w.apns.requests.filter((r) => r.reply !== 'hang' && r.reply.status === 200).map((r) => r.token),
      ]);
    await w.fcm.waitForRequests(w.fcm.requests.filter((r) => r.reply !== 'hang' && r.reply.status !== 200).length + 2, 20_000);
    await w.apns.waitForRequests(w.apns.requests.filter((r) => r.reply !== 'hang' && r.reply.status !== 200).length + 2, 20_000);
    assert.deepEqual([...(await delivered())].sort(), [fcmToken(1), fcmToken(2), apnsToken(1), apnsToken(2)].sort());
    assert.equal(w.server.logs.filter(paused('fcm')).length, 1, 'one error line per pause');
    assert.equal(w.server.logs.filter(paused('apns')).length, 1, 'one error line per pause');
    a.close();
  });

  it('a failure to fetch FCM\'s access token (the token endpoint down for a moment) is retried, and the notification delivered', async () => {
    // Long enough for google-auth-library's own retries of the token request to give up first.
    const w = await world('request_timeout_ms = 30000');
    // More failures than the library retries by itself: chatd sees app/invalid-credential.
    w.fcm.failTokenRequests(4);
    const bob = await offlineUser(w, { platform: 'fcm', token: fcmToken(3) });
    const a = await sender(w);
    await sendTo(a, bob.id, 'after the blip');
    const retried = await w.server.waitForLog((line) => line.msg === 'push failed for now; will retry', 30_000);
    assert.match(String(retried.reason), /app\/invalid-credential/);
    const [record] = await w.fcm.waitForRequests(1);
    assert.equal(record?.message.token, fcmToken(3));
    assert.ok(w.fcm.tokenRequests >= 2, 'the token was fetched again');
    a.close();
  });

  it("FCM's APNs key refused (THIRD_PARTY_AUTH_ERROR, iOS devices only) fails that notification without pausing FCM: Android devices go on, one error line", async () => {
    const w = await world('');
    const iosToken = fcmToken(5);
    w.fcm.respondWith((request) => (request.message.token === iosToken ? { status: 401, errorCode: 'THIRD_PARTY_AUTH_ERROR' } : undefined));
    const ios = await offlineUser(w, { platform: 'fcm', token: iosToken });
    const android = await offlineUser(w, { platform: 'fcm', token: fcmToken(6) });
    const a = await sender(w);
    await sendTo(a, ios.id, 'to the iPhone');
    const refused = await w.server.waitForLog((line) => line.msg === 'push refused by the provider; not retried' && line.device === ios.deviceId);
    assert.match(String(refused.reason), /third-party-auth-error/);
    const told = await w.server.waitForLog((line) => String(line.msg).startsWith('push to iOS devices through FCM refused'));
    assert.equal(told.level, 50, 'error level');
    assert.match(String(told.check), /APNs authentication key .* Firebase project/);
    await sendTo(a, ios.id, 'to the iPhone again');
    await sendTo(a, android.id, 'to the Android phone');
    const records = await w.fcm.waitForRequests(3);
    assert.deepEqual(records.map((record) => [record.message.token, record.reply]).sort(), [
      [iosToken, { status: 401, errorCode: 'THIRD_PARTY_AUTH_ERROR' }],
      [iosToken, { status: 401, errorCode: 'THIRD_PARTY_AUTH_ERROR' }],
      [fcmToken(6), { status: 200 }],
    ].sort(), 'each iOS notification asked once (not retried), the Android one sent');
    assert.equal(w.server.logs.filter((line) => String(line.msg).startsWith('push provider paused')).length, 0, 'FCM not paused');
    assert.equal(w.server.logs.filter((line) => String(line.msg).startsWith('push to iOS devices through FCM refused')).length, 1, 'told once');
    const registered = await request(`${w.server.url}/v1/me/push`, { token: ios.token });
    assert.equal(registered.body.push?.platform, 'fcm', 'the iOS token stays');
    a.close();
  });

  it('FCM 429 with Retry-After holds FCM until then, and the notification goes out after it', async () => {
    const w = await world('');
    w.fcm.respondWith([{ status: 429, errorCode: 'QUOTA_EXCEEDED', retryAfter: 1 }]);
    const bob = await offlineUser(w, { platform: 'fcm', token: fcmToken(4) });
    const a = await sender(w);
    await sendTo(a, bob.id, 'slow down');
    const wait = await w.server.waitForLog((line) => String(line.msg).startsWith('push provider asked to wait'));
    assert.equal(wait.retry_after_ms, 1000);
    assert.equal(wait.platform, 'fcm');
    const retry = await w.server.waitForLog((line) => line.msg === 'push failed for now; will retry');
    assert.ok(Number(retry.retry_in_ms) >= 1000, `the retry is not before the Retry-After (${retry.retry_in_ms} ms)`);
    const records = await w.fcm.waitForRequests(2);
    assert.deepEqual(records[1]?.reply, { status: 200 });
    a.close();
  });
});
