import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { WebPushError } from 'web-push';
import { createLogger } from '../../src/log.js';
import { type DispatcherSettings, PushDispatcher } from '../../src/push/dispatcher.js';
import { suspectDeadToken } from '../../src/push/provider-gate.js';
import type { Notification, PushOutcome, PushPlatform, PushProvider, PushTarget } from '../../src/push/types.js';
import { classify } from '../../src/push/webpush.js';
import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';
import { SqlitePushQueueStorage, SqlitePushTokensStorage } from '../../src/storage/sqlite/push.js';
import { memoryStore, seedThread } from '../contracts/sqlite-fixture.js';
import { seedUser } from '../contracts/storage-accounts.contract.js';
import { FakeClock } from '../helpers/fake-clock.js';

/*
 * One ordinary user cannot stop push for everyone (issue 22, attacker
 * review), on the fake clock. A Web Push endpoint is a URL the user chose (any
 * subscription on an allowed push-service host: one made with another VAPID
 * key answers 401 or 403, one the user's own service answers anything), so its
 * answers speak for that subscription only: a 401 is a suspect dead token
 * like a 403, a Retry-After holds that subscription (capped), and the
 * dead-token breaker counts distinct users, not one user's many logins, and
 * not the definite dead answers. The answers are built by the real Web Push
 * classifier from the push service's status, as the provider would.
 */

/** What a push service answering `status` (with `headers`) makes of a send, through the real classifier. */
function webPush(status: number, headers: Record<string, string> = {}, now?: number): PushOutcome {
  return classify(new WebPushError('Received unexpected response code', status, headers, 'refused', 'https://push.example/x'), now);
}

const SENT: PushOutcome = { kind: 'sent', id: undefined };

/** A provider whose answer is a function of the token ("u<user>d<device>"). */
class ScriptedProvider implements PushProvider {
  readonly calls: string[] = [];
  private waiters: Array<{ count: number; done: () => void }> = [];
  constructor(
    readonly platform: PushPlatform,
    public answer: (token: string) => PushOutcome,
  ) {}

  async send(target: PushTarget, _notification: Notification): Promise<PushOutcome> {
    this.calls.push(target.token);
    for (const waiter of this.waiters.filter((w) => w.count <= this.calls.length)) waiter.done();
    return this.answer(target.token);
  }

  async close(): Promise<void> {}

  called(count: number): Promise<void> {
    if (this.calls.length >= count) return Promise.resolve();
    return new Promise((done) => this.waiters.push({ count, done }));
  }
}

async function turnsUntil(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let turn = 0; turn < 2_000; turn++) {
    if (await check()) return;
    await new Promise((next) => setImmediate(next));
  }
  assert.fail(`never happened: ${what}`);
}

/** Lets every write and pass that is due run (no timer fires: the clock stands still). */
async function settled(): Promise<void> {
  for (let turn = 0; turn < 50; turn++) await new Promise((next) => setImmediate(next));
}

const tokenOf = (user: number, device: number): string => `u${user}d${device}`;
const userOf = (token: string): number => Number(/^u(\d+)/.exec(token)?.[1]);

/**
 * Recipients `users[i]` devices each (user i+1, in that order: their notifications are queued in that
 * order), every device registered on `platform`, each user in a thread of their own with alice.
 */
async function setUp(platform: PushPlatform, users: readonly number[], answer: (token: string) => PushOutcome, settings: Partial<DispatcherSettings> = {}, threadsPerUser = 1) {
  const store = memoryStore();
  const admin = new SqliteAdminStorage(store);
  const tokens = new SqlitePushTokensStorage(store);
  const clock = new FakeClock(5_000_000);
  const alice = await seedUser(admin, 'alice', 1);
  const devices: number[] = [];
  for (const [index, count] of users.entries()) {
    const user = await seedUser(admin, `user${index + 1}`, count);
    for (const [n, deviceId] of user.deviceIds.entries()) {
      await tokens.registerPushToken(deviceId, { platform, token: tokenOf(index + 1, n + 1), topic: null });
      devices.push(deviceId);
    }
    for (let thread = 0; thread < threadsPerUser; thread++) {
      seedThread(store, [alice.userId, user.userId], { userId: alice.userId, deviceId: alice.deviceIds[0] as number }, 1, clock.now());
    }
  }
  const provider = new ScriptedProvider(platform, answer);
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const dispatcher = new PushDispatcher({
    storage: new SqlitePushQueueStorage(store),
    clock,
    log: createLogger('info', sink),
    providers: new Map([[platform, provider] as const]),
    badge: async () => 1,
    settings: { preview: false, maxAgeMs: 86_400_000, maxAttempts: 0, retryBaseMs: 1_000, concurrency: 1, ...settings },
  });
  const registered = async (): Promise<number> => {
    let count = 0;
    for (const deviceId of devices) if (await tokens.pushRegistration(deviceId)) count += 1;
    return count;
  };
  const logged = (msg: RegExp): Array<Record<string, unknown>> => lines.filter((line) => msg.test(String(line.msg)));
  return { admin, clock, provider, dispatcher, registered, logged };
}

describe('one user cannot stop push for everyone (fake clock)', () => {
  it('F1: a Web Push 401 is that subscription\'s problem (a suspect dead token), not a pause of Web Push', async () => {
    assert.equal(webPush(401).kind, 'dead_token', 'Mozilla answers 401 for a subscription made with another VAPID key');
    // User 1 subscribed with another VAPID key; user 2's notification, queued after it, goes out at once.
    const { admin, provider, dispatcher, registered, logged } = await setUp('webpush', [1, 1], (token) => (userOf(token) === 1 ? webPush(401) : SENT));
    dispatcher.start();
    await provider.called(2);
    await turnsUntil(async () => (await admin.pushCounts()).sent === 1, 'user 2 served without waiting for anything');
    assert.deepEqual(provider.calls, ['u1d1', 'u2d1']);
    assert.equal(logged(/^push provider paused/).length, 0, 'Web Push not paused');
    assert.equal(dispatcher.providerStates().get('webpush')?.paused, false);
    assert.equal(await registered(), 2, 'kept for now: nothing accepted since the start yet');
    await dispatcher.stop();
  });

  it('F1: Web Push pauses when subscriptions of many different users answer 401 in a row (a real key problem)', async () => {
    const { admin, clock, provider, dispatcher, registered, logged } = await setUp('webpush', [1, 1, 1], () => webPush(401), { breakerDeadTokens: 3 });
    dispatcher.start();
    while (logged(/^push provider paused/).length === 0) {
      clock.advance(1_000);
      await settled();
    }
    assert.match(String(logged(/^push provider paused/)[0]?.reason), /3 users in a row.*401/);
    assert.match(String(logged(/^push provider paused/)[0]?.check), /webpush\.vapid_file/);
    assert.equal(await registered(), 3, 'no subscription removed');
    provider.answer = () => SENT;
    clock.advance(300_000);
    await turnsUntil(async () => (await admin.pushCounts()).sent === 3, 'all delivered after the probe');
    await dispatcher.stop();
  });

  it('F2: a Web Push Retry-After holds that subscription only, and no longer than 5 minutes', async () => {
    // User 1's endpoint asks for an hour; user 2's notification, queued after it, goes out at once.
    const { admin, clock, provider, dispatcher, logged } = await setUp('webpush', [1, 1], (token) =>
      userOf(token) === 1 && provider.calls.length === 1 ? webPush(429, { 'retry-after': '3600' }) : SENT,
    );
    dispatcher.start();
    await turnsUntil(async () => (await admin.pushCounts()).sent === 1, 'user 2 served at once');
    assert.deepEqual(provider.calls, ['u1d1', 'u2d1']);
    const [wait] = logged(/asked to wait/);
    assert.match(String(wait?.msg), /^push subscription asked to wait/);
    assert.equal(wait?.retry_after_ms, 300_000, 'capped at 5 minutes');
    assert.equal(dispatcher.providerStates().get('webpush')?.until, 0, 'the provider itself does not wait');
    clock.advance(299_999);
    await settled();
    assert.equal(provider.calls.length, 2, 'user 1 waits');
    clock.advance(1);
    await turnsUntil(async () => (await admin.pushCounts()).sent === 2, 'user 1 served after 5 minutes, not an hour');
    await dispatcher.stop();
  });

  it('F2: rows that only wait (a subscription\'s Retry-After) do not hold up the due rows behind them', async () => {
    // User 1's subscription asks to wait at its first notification; its second one waits too, and must not keep
    // user 2's (due, queued after both) from going out now: with concurrency 1 a pass claims one row at a time.
    const { admin, provider, dispatcher } = await setUp(
      'webpush',
      [1, 1],
      (token) => (userOf(token) === 1 ? webPush(429, { 'retry-after': '60' }) : SENT),
      {},
      2,
    );
    dispatcher.start();
    await turnsUntil(async () => (await admin.pushCounts()).sent >= 1, 'user 2 served without waiting for user 1\'s minute');
    assert.deepEqual(provider.calls.slice(0, 1), ['u1d1']);
    assert.ok(provider.calls.includes('u2d1'));
    await dispatcher.stop();
  });

  it('F2: an APNs/FCM Retry-After still holds the whole provider, capped at 5 minutes', async () => {
    const { admin, clock, provider, dispatcher, logged } = await setUp('fcm', [1, 1], () =>
      provider.calls.length === 1 ? { kind: 'retry', reason: 'FCM 429', retryAfterMs: 3_600_000 } : SENT,
    );
    dispatcher.start();
    await turnsUntil(() => logged(/^push provider asked to wait/).length === 1, 'the wait logged');
    await settled();
    assert.equal(provider.calls.length, 1, 'the other user waits too (one endpoint speaks for all)');
    assert.equal(logged(/^push provider asked to wait/)[0]?.retry_after_ms, 300_000);
    clock.advance(299_999);
    await settled();
    assert.equal(provider.calls.length, 1);
    clock.advance(1);
    await turnsUntil(async () => (await admin.pushCounts()).sent === 2, 'both sent after 5 minutes, not an hour');
    await dispatcher.stop();
  });

  it('F3: one user with as many logins as the breaker counts does not trip it: it counts users', async () => {
    // User 1: 3 logins, each subscribed with another VAPID key (403); breaker at 3; user 2 queued after them.
    const { admin, provider, dispatcher, registered, logged } = await setUp('webpush', [3, 1], (token) => (userOf(token) === 1 ? webPush(403) : SENT), {
      breakerDeadTokens: 3,
    });
    dispatcher.start();
    await turnsUntil(async () => (await admin.pushCounts()).sent === 1, 'user 2 served at once');
    assert.deepEqual(provider.calls, ['u1d1', 'u1d2', 'u1d3', 'u2d1']);
    assert.equal(logged(/^push provider paused/).length, 0, 'not paused');
    assert.equal(await registered(), 4, 'held until the provider proved itself (user 2 just did)');
    await dispatcher.stop();
  });

  it('F3: definite dead answers (Web Push 404/410, APNs 410, FCM UNREGISTERED) are removed at once and never count', async () => {
    for (const platform of ['webpush', 'apns'] as const) {
      const gone: PushOutcome = platform === 'webpush' ? webPush(410) : { kind: 'dead_token', reason: 'APNs 410 Unregistered' };
      // Users 1–3 gone (before anything was accepted), breaker at 2; user 4 fine.
      const { admin, provider, dispatcher, registered, logged } = await setUp(platform, [1, 1, 1, 1], (token) => (userOf(token) <= 3 ? gone : SENT), {
        breakerDeadTokens: 2,
      });
      dispatcher.start();
      await turnsUntil(async () => (await admin.pushCounts()).sent === 1, `${platform}: user 4 served at once`);
      assert.deepEqual(provider.calls, ['u1d1', 'u2d1', 'u3d1', 'u4d1']);
      assert.equal(logged(/^push provider paused/).length, 0, `${platform}: not paused`);
      assert.equal(await registered(), 1, `${platform}: the three gone subscriptions removed`);
      assert.equal((await admin.pushCounts()).droppedTokens, 3);
      await dispatcher.stop();
    }
  });

  it('F3: once the breaker trips, the devices that tripped it are probed after the others', async () => {
    // Users 1 and 2 answer a suspect dead token (breaker at 2: they trip it); user 3 would be accepted.
    const { admin, clock, provider, dispatcher, logged } = await setUp(
      'apns',
      [1, 1, 1],
      (token) => (userOf(token) <= 2 ? suspectDeadToken('APNs 400 BadDeviceToken') : SENT),
      { breakerDeadTokens: 2 },
    );
    dispatcher.start();
    await turnsUntil(() => logged(/^push provider paused/).length === 1, 'the breaker tripped');
    await settled();
    assert.deepEqual(provider.calls, ['u1d1', 'u2d1']);
    for (let round = 0; round < 10 && (await admin.pushCounts()).sent === 0; round++) {
      clock.advance(Math.max(1, (dispatcher.providerStates().get('apns')?.until ?? 0) - clock.now()));
      await settled();
    }
    assert.equal(provider.calls[2], 'u3d1', `the first probe asked the device the breaker had not heard from (probes: ${provider.calls.slice(2).join(',')})`);
    await turnsUntil(async () => (await admin.pushCounts()).sent === 1, 'the probe accepted');
    await dispatcher.stop();
  });
});
