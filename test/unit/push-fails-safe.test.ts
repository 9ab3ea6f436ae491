import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { RuntimeMetrics } from '../../src/metrics.js';
import { type DispatcherSettings, PushDispatcher } from '../../src/push/dispatcher.js';
import { ProviderGate, suspectDeadToken } from '../../src/push/provider-gate.js';
import type { Notification, PushOutcome, PushProvider, PushTarget } from '../../src/push/types.js';
import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';
import { SqlitePushQueueStorage, SqlitePushTokensStorage } from '../../src/storage/sqlite/push.js';
import { memoryStore, seedThread } from '../contracts/sqlite-fixture.js';
import { seedUser } from '../contracts/storage-accounts.contract.js';
import { FakeClock } from '../helpers/fake-clock.js';

/*
 * Push that fails safe (issue 22, review M4/M7/L5), on the fake clock: a
 * provider that refuses this server is paused (nothing removed, no attempt
 * counted, one error line) and probed until it accepts; Retry-After holds the
 * whole provider; retries run until the notification's lifetime; dead-token
 * answers that a configuration mistake gives every token remove nothing
 * until the provider has proven itself, and many in a row pause it.
 */

/** A provider whose answer is a function of the token and of how many calls came before. */
class ScriptedProvider implements PushProvider {
  readonly platform = 'apns' as const;
  readonly calls: Array<{ token: string; notification: Notification }> = [];
  private waiters: Array<{ count: number; done: () => void }> = [];
  constructor(public answer: (token: string, call: number) => PushOutcome) {}

  async send(target: PushTarget, notification: Notification): Promise<PushOutcome> {
    this.calls.push({ token: target.token, notification });
    for (const waiter of this.waiters.filter((w) => w.count <= this.calls.length)) waiter.done();
    return this.answer(target.token, this.calls.length);
  }

  async close(): Promise<void> {}

  called(count: number): Promise<void> {
    if (this.calls.length >= count) return Promise.resolve();
    return new Promise((done) => this.waiters.push({ count, done }));
  }
}

/** Turns of the event loop until `check` holds (each write commits in a later turn); fails after a bound, never sleeps. */
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

const SENT: PushOutcome = { kind: 'sent', id: undefined };
const token = (n: number): string => String(n).repeat(64).slice(0, 64);

async function setUp(recipients: number, answer: (token: string, call: number) => PushOutcome, settings: Partial<DispatcherSettings> = {}) {
  const store = memoryStore();
  const admin = new SqliteAdminStorage(store);
  const tokens = new SqlitePushTokensStorage(store);
  const clock = new FakeClock(5_000_000);
  const alice = await seedUser(admin, 'alice', 1);
  const devices: number[] = [];
  for (let n = 1; n <= recipients; n++) {
    const user = await seedUser(admin, `user${n}`, 1);
    const deviceId = user.deviceIds[0] as number;
    await tokens.registerPushToken(deviceId, { platform: 'apns', token: token(n), topic: null });
    seedThread(store, [alice.userId, user.userId], { userId: alice.userId, deviceId: alice.deviceIds[0] as number }, 1, clock.now());
    devices.push(deviceId);
  }
  const provider = new ScriptedProvider(answer);
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
    providers: new Map([['apns', provider] as const]),
    badge: async () => 1,
    settings: { preview: false, maxAgeMs: 86_400_000, maxAttempts: 0, retryBaseMs: 1_000, concurrency: 1, ...settings },
  });
  const registered = async (): Promise<number> => {
    let count = 0;
    for (const deviceId of devices) if (await tokens.pushRegistration(deviceId)) count += 1;
    return count;
  };
  const attempts = (): number[] => (store.db.prepare('SELECT attempts FROM push_queue ORDER BY id').all() as Array<{ attempts: number }>).map((row) => row.attempts);
  const logged = (msg: RegExp): Array<Record<string, unknown>> => lines.filter((line) => msg.test(String(line.msg)));
  return { store, admin, clock, provider, dispatcher, devices, registered, attempts, logged, lines };
}

describe('the provider gate', () => {
  it('an answer to a request sent before the pause, arriving while the probe is out, is not the probe\'s', () => {
    const gate = new ProviderGate(20, (n) => 1_000 * 2 ** n);
    assert.equal(gate.admit(0, 1).kind, 'send');
    assert.equal(gate.admit(0, 2).kind, 'send');
    gate.answered({ kind: 'provider_error', reason: 'refused' }, 0, 1, false);
    const { until } = gate.state();
    assert.equal(gate.admit(until, 3).kind, 'probe');
    // Device 2's request, sent before the pause, is answered now: neither the probe's end nor its failure.
    gate.answered({ kind: 'retry', reason: '503' }, until, 2, false);
    assert.equal(gate.state().until, until, 'no backoff for a probe that has not answered');
    assert.equal(gate.admit(until, 4).kind, 'busy', 'still one request at a time while the probe is out');
    gate.deadToken(5, 5, suspectDeadToken('APNs 400 BadDeviceToken'), until, false);
    assert.equal(gate.admit(until, 4).kind, 'busy');
    assert.deepEqual(gate.answered(SENT, until, 3, true), { pausedNow: false, resumed: true });
    assert.equal(gate.admit(until, 4).kind, 'send');
  });
});

describe('push that fails safe (fake clock)', () => {
  it('a provider that refuses this server is paused: nothing removed, no attempt counted, one error line; probed with backoff; all delivered once it accepts', async () => {
    let fixed = false;
    const refusal: PushOutcome = { kind: 'provider_error', reason: 'APNs 403 InvalidProviderToken' };
    const { admin, clock, provider, dispatcher, registered, attempts, logged } = await setUp(3, () => (fixed ? SENT : refusal), { concurrency: 2 });
    dispatcher.start();
    await provider.called(1);
    await turnsUntil(() => logged(/^push provider paused/).length === 1, 'the pause logged');
    await settled();
    assert.ok(provider.calls.length <= 2, 'concurrency 2: at most the one already on its way when the pause began');
    const before = provider.calls.length;
    assert.equal(await registered(), 3, 'no token removed');
    assert.deepEqual(attempts(), [0, 0, 0], 'rows wait without using attempts');
    assert.equal((await admin.pushCounts()).queued, 3);
    const [paused] = logged(/^push provider paused/);
    assert.equal(paused?.level, 50, 'error level');
    assert.equal(paused?.platform, 'apns');
    assert.match(String(paused?.check), /apns\.bundle_id.*apns\.environment/);
    assert.deepEqual(dispatcher.providerStates().get('apns')?.paused, true);
    const metrics = new RuntimeMetrics({
      writes: () => ({ transactions: 0, writes: 0, seconds: 0 }),
      connections: () => 0,
      engines: async () => [],
      pushProviders: () => dispatcher.providerStates(),
    });
    try {
      assert.ok((await metrics.render()).split('\n').includes('chatd_push_provider_paused{platform="apns"} 1'), 'the pause on /metrics');
    } finally {
      metrics.stop();
    }

    // The first probe (one request) fails: still paused, no second error line.
    clock.advance(1_000);
    await provider.called(before + 1);
    await turnsUntil(() => logged(/^push provider still paused/).length >= 1, 'the failed probe');
    await settled();
    assert.equal(provider.calls.length, before + 1, 'one probe at a time');
    // The second probe waits longer (backoff): not within the first delay's span.
    clock.advance(999);
    await settled();
    assert.equal(provider.calls.length, before + 1);

    fixed = true;
    clock.advance(300_000);
    await turnsUntil(async () => (await admin.pushCounts()).sent === 3, 'every notification sent after the probe was accepted');
    assert.equal(logged(/^push provider paused/).length, 1, 'one error line per pause');
    assert.equal(logged(/^push provider resumed/).length, 1);
    assert.equal(await registered(), 3);
    assert.equal(dispatcher.providerStates().get('apns')?.paused, false);
    await dispatcher.stop();
  });

  it('an APNs or FCM Retry-After holds the whole provider: no notification goes to it before then', async () => {
    const { admin, clock, provider, dispatcher, logged } = await setUp(2, (_token, call) => (call === 1 ? { kind: 'retry', reason: 'FCM 429', retryAfterMs: 30_000 } : SENT));
    dispatcher.start();
    await provider.called(1);
    await turnsUntil(() => logged(/Retry-After/).length === 1, 'the wait logged');
    await settled();
    assert.equal(provider.calls.length, 1, 'the other device\'s notification waits too');
    clock.advance(29_999);
    await settled();
    assert.equal(provider.calls.length, 1);
    clock.advance(1);
    await turnsUntil(async () => (await admin.pushCounts()).sent === 2, 'both sent once the wait is over');
    assert.equal(logged(/Retry-After/)[0]?.retry_after_ms, 30_000);
    await dispatcher.stop();
  });

  it('retries past the old max_attempts (8) while the notification lives, and gives up when its lifetime would end', async () => {
    const { admin, clock, provider, dispatcher } = await setUp(1, (_token, call) => (call <= 12 ? { kind: 'retry', reason: '503' } : SENT), {
      maxAgeMs: 3_600_000,
    });
    dispatcher.start();
    for (let call = 1; call <= 12; call++) {
      await provider.called(call);
      await turnsUntil(() => clock.pending > 0, `retry ${call} scheduled`);
      clock.advance(300_000);
    }
    await turnsUntil(async () => (await admin.pushCounts()).sent === 1, 'sent at the 13th attempt');
    await dispatcher.stop();

    const short = await setUp(1, () => ({ kind: 'retry', reason: '503' }), { maxAgeMs: 600_000 });
    short.dispatcher.start();
    await turnsUntil(async () => (await short.admin.pushCounts()).failed === 1 || short.clock.pending > 0, 'a retry or the end');
    while ((await short.admin.pushCounts()).failed === 0) {
      short.clock.advance(60_000);
      await settled();
    }
    assert.equal(short.logged(/lifetime/).length, 1, 'given up for its lifetime, not a count');
    assert.ok(short.provider.calls.length > 3, `retried until then (${short.provider.calls.length} attempts)`);
    assert.ok(short.clock.now() - 5_000_000 <= 600_000, 'and no later than its lifetime');
    await short.dispatcher.stop();
  });

  it('dead-token answers a configuration mistake gives every token remove nothing before a success, and many in a row pause the provider', async () => {
    let fixed = false;
    const { admin, clock, provider, dispatcher, registered, logged } = await setUp(
      3,
      () => (fixed ? SENT : suspectDeadToken('APNs 400 DeviceTokenNotForTopic')),
      { breakerDeadTokens: 3 },
    );
    dispatcher.start();
    // Two devices answered: kept for now (the provider has accepted nothing yet); the third trips the breaker.
    while (logged(/^push provider paused/).length === 0) {
      clock.advance(1_000);
      await settled();
    }
    assert.equal(await registered(), 3, 'no token removed');
    assert.equal((await admin.pushCounts()).droppedTokens, 0);
    assert.match(String(logged(/^push provider paused/)[0]?.reason), /3 users in a row/);
    fixed = true;
    clock.advance(300_000);
    await turnsUntil(async () => (await admin.pushCounts()).sent === 3, 'all three delivered after the probe');
    assert.equal(await registered(), 3);
    assert.ok(provider.calls.length >= 4);
    await dispatcher.stop();
  });

  it('one device whose probe keeps failing does not hold the provider: the next probe asks another device', async () => {
    // The first answer pauses the provider; the device of the first probe is refused whatever happens (a
    // provider_error for its token alone); the other device would be accepted.
    let bad: string | undefined;
    const refused: PushOutcome = { kind: 'provider_error', reason: 'refused' };
    const { admin, clock, provider, dispatcher, registered, logged } = await setUp(2, (t, call) => {
      if (call === 2) bad = t;
      return call === 1 || t === bad ? refused : SENT;
    });
    dispatcher.start();
    await provider.called(1);
    // Both rows wait for the first probe (the queue hands out the oldest due first, then the lowest id).
    await turnsUntil(() => logged(/^push provider paused/).length === 1, 'the pause logged');
    await settled();
    for (let round = 0; round < 8 && (await admin.pushCounts()).sent === 0; round++) {
      clock.advance(300_000);
      await settled();
    }
    assert.equal((await admin.pushCounts()).sent, 1, `device 2 was probed and accepted (probed: ${provider.calls.map((call) => call.token.slice(0, 1)).join(',')})`);
    assert.equal(provider.calls.filter((call) => call.token === bad).length <= 3, true, 'the failed device is not asked every time');
    assert.equal(await registered(), 2, 'nothing removed');
    await dispatcher.stop();
  });

  it('a lone suspect dead token amid successes is removed; one that only a dead token gets is removed at once', async () => {
    const dead = token(2);
    const { admin, provider, dispatcher, registered } = await setUp(3, (t) =>
      t === dead ? suspectDeadToken('APNs 400 BadDeviceToken') : t === token(3) ? { kind: 'dead_token', reason: 'APNs 410 Unregistered' } : SENT,
    );
    dispatcher.start();
    await provider.called(3);
    // Order is by row: device 1 sent (proves the provider), device 2 suspect (removed), device 3 410 (removed).
    await turnsUntil(async () => (await admin.pushCounts()).droppedTokens === 2, 'both dead tokens removed');
    assert.equal(await registered(), 1);
    await dispatcher.stop();
  });
});
