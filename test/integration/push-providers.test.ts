import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import type { Agent } from 'node:https';
import { join } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import apn from '@parse/node-apn';
import { type App, type Credential, cert, deleteApp, initializeApp } from 'firebase-admin/app';
import { type Message, type Messaging, getMessaging } from 'firebase-admin/messaging';
import {
  APNS_KEY_ID,
  APNS_TEAM_ID,
  type FakeApns,
  type FakeFcm,
  type TestPki,
  makeTestPki,
  redirectingAgent,
  serviceAccountJson,
  startFakeApns,
  startFakeFcm,
} from '../helpers/push-providers.js';
import { tempDir } from '../helpers/tmp.js';

/*
 * The real push libraries against the fakes in test/helpers/push-providers.ts:
 * proof that the fakes speak the providers' protocols, and a record of how the
 * libraries report each answer (which the push code maps to "drop the device",
 * "retry later" or "give up").
 */

const TOPIC = 'org.example.chatd';
const LIVE = 'a'.repeat(64);
const DEAD = 'b'.repeat(64);
const MALFORMED = 'c'.repeat(64);
const PROJECT = 'chatd-test';

let dir: string;
let pki: TestPki;

before(() => {
  dir = tempDir('chatd-push-');
  pki = makeTestPki(dir);
});

/** A P-256 key that is not the one the fake knows. */
function strangerApnsKey(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function chatNotification(): apn.Notification {
  const notification = new apn.Notification();
  notification.topic = TOPIC;
  notification.alert = 'New message';
  return notification;
}

describe('node-apn against the fake APNs', () => {
  interface Setup {
    readonly fake: FakeApns;
    provider(options?: Partial<apn.ProviderOptions>): apn.Provider;
  }

  /** A fresh fake, and providers pointed at it that are shut down when the test ends. */
  async function setUp(t: TestContext): Promise<Setup> {
    const fake = await startFakeApns(pki);
    const providers: apn.Provider[] = [];
    t.after(async () => {
      await Promise.all(providers.map((provider) => provider.shutdown()));
      await fake.close();
    });
    return {
      fake,
      provider: (options = {}) => {
        const provider = new apn.Provider({
          token: { key: pki.apnsKeyFile, keyId: APNS_KEY_ID, teamId: APNS_TEAM_ID },
          production: false,
          address: 'localhost',
          port: fake.port,
          ca: [pki.caFile],
          ...options,
        });
        providers.push(provider);
        return provider;
      },
    };
  }

  it('delivers a notification with its collapse id, badge, alert and custom payload, and the fake records exactly that', async (t) => {
    const { fake, provider } = await setUp(t);
    const apns = provider();
    const notification = new apn.Notification();
    const expiry = Math.floor(Date.now() / 1000) + 3600;
    notification.topic = TOPIC;
    notification.collapseId = 'thread-42';
    notification.badge = 3;
    notification.alert = { title: 'Ann', body: 'See you at eight' };
    notification.payload = { thread: 't-42', seq: 17 };
    notification.pushType = 'alert';
    notification.priority = 10;
    notification.expiry = expiry;

    const result = await apns.send(notification, LIVE);

    assert.deepEqual(result.failed, []);
    assert.equal(result.sent.length, 1);
    assert.equal(result.sent[0]?.device, LIVE);
    const [seen] = await fake.waitForRequests(1);
    assert.ok(seen);
    assert.equal(seen.token, LIVE);
    assert.equal(seen.authorized, true);
    assert.deepEqual(seen.reply, { status: 200 });
    assert.deepEqual(seen.headers, {
      'apns-topic': TOPIC,
      'apns-collapse-id': 'thread-42',
      'apns-push-type': 'alert',
      'apns-priority': '10',
      'apns-expiration': String(expiry),
      'apns-id': undefined,
    });
    assert.deepEqual(seen.payload, {
      aps: { badge: 3, alert: { title: 'Ann', body: 'See you at eight' } },
      thread: 't-42',
      seq: 17,
    });

    await apns.send(chatNotification(), LIVE);
    assert.equal(fake.requests.length, 2);
    assert.equal(fake.connections, 1, 'one provider keeps one HTTP/2 session');
  });

  it('reports an unregistered token (410) and a bad one (400) in failed[], next to the one delivered', async (t) => {
    const { fake, provider } = await setUp(t);
    fake.respondWith((request) =>
      request.token === DEAD ? { status: 410, reason: 'Unregistered' }
        : request.token === MALFORMED ? { status: 400, reason: 'BadDeviceToken' }
          : undefined);

    const result = await provider().send(chatNotification(), [LIVE, DEAD, MALFORMED]);

    assert.deepEqual(result.sent.map((sent) => sent.device), [LIVE]);
    const dead = result.failed.find((failure) => failure.device === DEAD);
    assert.equal(dead?.status, 410);
    assert.equal(dead?.response?.reason, 'Unregistered');
    assert.equal(typeof dead?.response?.timestamp, 'number');
    const malformed = result.failed.find((failure) => failure.device === MALFORMED);
    assert.equal(malformed?.status, 400);
    assert.equal(malformed?.response?.reason, 'BadDeviceToken');
    assert.equal(fake.requests.length, 3, 'no retries for 4xx other than 429');
  });

  it('retries 429 three more times by itself, at once (Retry-After is not read), then reports the status', async (t) => {
    const { fake, provider } = await setUp(t);
    fake.respondWith(() => ({ status: 429, reason: 'TooManyRequests', retryAfter: 5 }));

    const result = await provider().send(chatNotification(), LIVE);

    assert.deepEqual(result.sent, []);
    assert.equal(result.failed[0]?.status, 429);
    assert.equal(result.failed[0]?.response?.reason, 'TooManyRequests');
    assert.equal(fake.requests.length, 4);
    const first = fake.requests[0]?.at ?? 0;
    const last = fake.requests[3]?.at ?? Infinity;
    assert.ok(last - first < 4000, 'node-apn reads headers["Retry-After"], which HTTP/2 never delivers (names are lower case)');
  });

  it('makes one request only when connectionRetryLimit is 0', async (t) => {
    const { fake, provider } = await setUp(t);
    fake.respondWith([{ status: 429, reason: 'TooManyRequests' }]);

    const result = await provider({ connectionRetryLimit: 0 }).send(chatNotification(), LIVE);

    assert.equal(result.failed[0]?.status, 429);
    assert.equal(fake.requests.length, 1);
  });

  it('retries a 500 by itself and succeeds when the next answer is 200', async (t) => {
    const { fake, provider } = await setUp(t);
    fake.respondWith([{ status: 500, reason: 'InternalServerError' }]);

    const result = await provider().send(chatNotification(), LIVE);

    assert.equal(result.sent.length, 1);
    assert.deepEqual(fake.requests.map((request) => request.reply), [{ status: 500, reason: 'InternalServerError' }, { status: 200 }]);
  });

  it('reports a lasting 500 with its status but no reason, and drops the session', async (t) => {
    const { fake, provider } = await setUp(t);
    fake.respondWith(Array.from({ length: 4 }, () => ({ status: 500, reason: 'InternalServerError' })));
    const apns = provider();

    const result = await apns.send(chatNotification(), LIVE);

    assert.equal(result.failed[0]?.status, 500);
    assert.equal(result.failed[0]?.response, undefined, 'node-apn replaces the body with an error for 500 InternalServerError');
    assert.match(String(result.failed[0]?.error?.message), /Error 500/);
    assert.equal(fake.requests.length, 4);

    assert.equal((await apns.send(chatNotification(), LIVE)).sent.length, 1);
    assert.equal(fake.connections, 2, 'the next send opened a new session');
  });

  it('turns away a provider token signed with another key, or naming another key id, with 403 InvalidProviderToken', async (t) => {
    const { fake, provider } = await setUp(t);

    const forged = await provider({ token: { key: strangerApnsKey(), keyId: APNS_KEY_ID, teamId: APNS_TEAM_ID } })
      .send(chatNotification(), LIVE);
    const misnamed = await provider({ token: { key: pki.apnsKeyFile, keyId: 'OTHERKEY01', teamId: APNS_TEAM_ID } })
      .send(chatNotification(), LIVE);

    for (const result of [forged, misnamed]) {
      assert.equal(result.failed[0]?.status, 403);
      assert.equal(result.failed[0]?.response?.reason, 'InvalidProviderToken');
    }
    assert.deepEqual(fake.requests.map((request) => request.authorized), [false, false]);
  });

  it('fails a request left unanswered after requestTimeout, with no status', async (t) => {
    const { fake, provider } = await setUp(t);
    fake.respondWith(['hang']);

    const result = await provider({ requestTimeout: 200 }).send(chatNotification(), LIVE);

    assert.equal(result.failed[0]?.status, undefined);
    assert.match(String(result.failed[0]?.error?.message), /apn write timeout/);
    assert.equal(fake.requests.length, 1);
  });
});

describe('firebase-admin against the fake FCM', () => {
  let appCount = 0;
  /** One key for every app (RSA key generation costs 50-400 ms); each app copies it to a path of its own. */
  let account: string;
  let stranger: string;

  before(() => {
    account = serviceAccountJson(dir, PROJECT);
    stranger = serviceAccountJson(dir, PROJECT, 'stranger');
  });

  interface Setup {
    readonly fake: FakeFcm;
    readonly messaging: Messaging;
  }

  /**
   * A fresh fake, and an app of its own pointed at it, deleted when the test
   * ends. Each app gets a service-account file of its own: `cert()` keeps one
   * credential per path (or per JSON.stringify of the object) for the whole
   * process, with the agent of its first call and its cached access token, so a
   * second `cert(samePath, otherAgent)` would reach the first fake.
   * `signedBy: 'stranger'` has the client use a key the fake does not know;
   * a Credential object replaces the service account altogether.
   */
  async function setUp(t: TestContext, signedBy: 'account' | 'stranger' | Credential = 'account'): Promise<Setup> {
    appCount += 1;
    const fake = await startFakeFcm(pki, { serviceAccountFile: account });
    const agent: Agent = redirectingAgent('127.0.0.1', fake.port, pki.caFile);
    let credential: Credential;
    if (typeof signedBy === 'string') {
      const used = join(dir, `${signedBy}-${appCount}.json`);
      copyFileSync(signedBy === 'account' ? account : stranger, used);
      credential = cert(used, agent);
    } else {
      credential = signedBy;
    }
    const app: App = initializeApp(
      { credential, httpAgent: agent, projectId: PROJECT },
      `push-providers-${appCount}`,
    );
    t.after(async () => {
      await deleteApp(app);
      agent.destroy();
      await fake.close();
    });
    return { fake, messaging: getMessaging(app) };
  }

  const message: Message = { token: LIVE, notification: { title: 'Ann', body: 'New message' } };

  async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
    const error: unknown = await promise.then(
      () => assert.fail('expected the send to be rejected'),
      (reason: unknown) => reason,
    );
    assert.ok(error instanceof Error && 'code' in error && typeof error.code === 'string', `not a Firebase error: ${String(error)}`);
    return { code: error.code, message: error.message };
  }

  it('sends a message and resolves with its name; one token request serves both sends', async (t) => {
    const { fake, messaging } = await setUp(t);

    const name = await messaging.send({
      token: LIVE,
      notification: { title: 'Ann', body: 'See you at eight' },
      data: { thread: 't-42', seq: '17' },
      android: { collapseKey: 'thread-42', priority: 'high' },
      apns: { headers: { 'apns-collapse-id': 'thread-42' }, payload: { aps: { badge: 3, mutableContent: true } } },
    });
    await messaging.send(message);

    assert.match(name, new RegExp(`^projects/${PROJECT}/messages/`));
    assert.equal(fake.tokenRequests, 1);
    assert.equal(fake.unauthorized, 0);
    const [seen] = await fake.waitForRequests(2);
    assert.equal(seen?.projectId, PROJECT);
    assert.deepEqual(seen?.message, {
      token: LIVE,
      notification: { title: 'Ann', body: 'See you at eight' },
      data: { thread: 't-42', seq: '17' },
      android: { collapse_key: 'thread-42', priority: 'high' },
      apns: { headers: { 'apns-collapse-id': 'thread-42' }, payload: { aps: { badge: 3, 'mutable-content': 1 } } },
    });
  });

  const errors = [
    { reply: { status: 404, errorCode: 'UNREGISTERED' }, code: 'messaging/registration-token-not-registered' },
    { reply: { status: 400, errorCode: 'INVALID_ARGUMENT' }, code: 'messaging/invalid-argument' },
    { reply: { status: 429, errorCode: 'QUOTA_EXCEEDED', retryAfter: 30 }, code: 'messaging/message-rate-exceeded' },
    { reply: { status: 500, errorCode: 'INTERNAL' }, code: 'messaging/internal-error' },
  ] as const;
  for (const { reply, code } of errors) {
    it(`rejects ${reply.status} ${reply.errorCode} with ${code}, without retrying`, async (t) => {
      const { fake, messaging } = await setUp(t);
      fake.respondWith([reply]);

      assert.equal((await rejection(messaging.send(message))).code, code);
      assert.equal(fake.requests.length, 1);
    });
  }

  it('retries a 503 UNAVAILABLE by itself, the first time at once', async (t) => {
    const { fake, messaging } = await setUp(t);
    fake.respondWith([{ status: 503, errorCode: 'UNAVAILABLE' }]);

    await messaging.send(message);

    assert.deepEqual(fake.requests.map((request) => request.reply), [{ status: 503, errorCode: 'UNAVAILABLE' }, { status: 200 }]);
  });

  it('fails with app/invalid-credential when the token endpoint refuses the service account', async (t) => {
    const { fake, messaging } = await setUp(t, 'stranger');

    const { code } = await rejection(messaging.send(message));

    assert.equal(code, 'app/invalid-credential');
    assert.equal(fake.tokenRequests, 1);
    assert.equal(fake.requests.length, 0);
  });

  it('reports an access token FCM does not accept (401 UNAUTHENTICATED) as messaging/third-party-auth-error', async (t) => {
    const unknownToken: Credential = { getAccessToken: async () => ({ access_token: 'ya29.never-issued', expires_in: 3600 }) };
    const { fake, messaging } = await setUp(t, unknownToken);

    assert.equal((await rejection(messaging.send(message))).code, 'messaging/third-party-auth-error');
    assert.equal(fake.unauthorized, 1);
    assert.equal(fake.tokenRequests, 0);
  });

  it('fails a request left hanging when the connection is cut', async (t) => {
    const { fake, messaging } = await setUp(t);
    fake.respondWith(['hang']);

    const sending = rejection(messaging.send(message));
    await fake.waitForRequests(1);
    await fake.close();

    assert.equal((await sending).code, 'app/network-error');
  });
});

describe('NODE_EXTRA_CA_CERTS instead of a ca option', () => {
  it('lets a process trust the fakes with neither node-apn\'s ca nor a CA on the agent', async (t) => {
    const apnsFake = await startFakeApns(pki);
    const account = serviceAccountJson(dir, PROJECT, 'extra-ca');
    const fcmFake = await startFakeFcm(pki, { serviceAccountFile: account });
    t.after(async () => {
      await apnsFake.close();
      await fcmFake.close();
    });
    // Node reads NODE_EXTRA_CA_CERTS once, at start-up: it needs a process of its own.
    const script = `
      import apn from '@parse/node-apn';
      import { cert, deleteApp, initializeApp } from 'firebase-admin/app';
      import { getMessaging } from 'firebase-admin/messaging';
      import { redirectingAgent } from './test/helpers/push-providers.ts';
      const provider = new apn.Provider({
        token: { key: ${JSON.stringify(pki.apnsKeyFile)}, keyId: ${JSON.stringify(APNS_KEY_ID)}, teamId: ${JSON.stringify(APNS_TEAM_ID)} },
        production: false, address: 'localhost', port: ${apnsFake.port},
      });
      const notification = new apn.Notification();
      notification.topic = ${JSON.stringify(TOPIC)};
      notification.alert = 'hello';
      const apns = await provider.send(notification, ${JSON.stringify(LIVE)});
      await provider.shutdown();
      const agent = redirectingAgent('127.0.0.1', ${fcmFake.port});
      const app = initializeApp({ credential: cert(${JSON.stringify(account)}, agent), httpAgent: agent, projectId: ${JSON.stringify(PROJECT)} });
      const name = await getMessaging(app).send({ token: ${JSON.stringify(LIVE)}, notification: { title: 'hello' } });
      await deleteApp(app);
      agent.destroy();
      console.log(JSON.stringify({ sent: apns.sent.length, failed: apns.failed.map((f) => String(f.error ?? f.status)), name }));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '--eval', script],
      { cwd: process.cwd(), env: { ...process.env, NODE_EXTRA_CA_CERTS: pki.caFile } },
    );

    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as { sent: number; failed: string[]; name: string };
    assert.deepEqual(result.failed, []);
    assert.equal(result.sent, 1);
    assert.match(result.name, new RegExp(`^projects/${PROJECT}/messages/`));
    assert.equal(apnsFake.requests.length, 1);
    assert.equal(fcmFake.requests.length, 1);
  });
});
