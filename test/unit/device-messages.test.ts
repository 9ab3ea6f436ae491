import assert from 'node:assert/strict';
import { FakeClock } from '../helpers/fake-clock.js';
import { describe, it } from 'node:test';
import { DeviceMessageService } from '../../src/services/device-messages.js';
import type { DeviceMessage, Principal } from '../../src/services/types.js';
import { migrate, openDatabase } from '../../src/storage/database.js';
import { Store } from '../../src/storage/store.js';
import { SqliteDeviceMessagesStorage } from '../../src/storage/sqlite/device-messages.js';

const DAY = 86_400_000;

/** A user with two devices on a fresh in-memory database, a clock the test moves, and the service. */
function setUp(settings: { maxQueueBytes?: number; maxQueueMessages?: number } = {}): {
  service: DeviceMessageService;
  store: Store;
  clock: FakeClock;
  from: Principal;
  to: Principal;
  third: Principal;
  live: DeviceMessage[];
} {
  const db = openDatabase({ file: ':memory:', synchronous: 'normal', busyTimeoutMs: 1000 });
  migrate(db);
  const store = new Store(db);
  const userId = store.users.insert({ username: 'alice', displayName: 'alice', passwordHash: 'x', now: 1 }) as number;
  const [first, second, third] = [0, 1, 2].map((i) => store.devices.insert({ userId, name: `d${i}`, platform: 'cli', tokenHash: Buffer.from(`t${i}`), now: 1 }));
  // Approved senders (the service reads only whether a certificate is stored; KeyService checks it).
  for (const [i, id] of [first, third].entries()) {
    store.keys.publish(id as number, { encKey: `e${i}`, signKey: `s${i}`, counter: 1, signature: 'sig', accountSignature: 'cert' }, 1);
  }
  const clock = new FakeClock(10 * DAY);
  const live: DeviceMessage[] = [];
  const service = new DeviceMessageService({
    storage: new SqliteDeviceMessagesStorage(store),
    clock,
    fanout: { deviceMessage: (_device, message) => live.push(message) },
    settings: { maxMessageBytes: 1024, maxQueueBytes: settings.maxQueueBytes ?? 64 * 1024, maxQueueMessages: settings.maxQueueMessages ?? 1000, ttlMs: 30 * DAY },
  });
  const user = { id: userId, username: 'alice', displayName: 'alice' };
  return { service, store, clock, from: { user, deviceId: first as number }, to: { user, deviceId: second as number }, third: { user, deviceId: third as number }, live };
}

describe('device messages', () => {
  it('expire after e2e.device_message_ttl_days, and not before', async () => {
    const { service, clock, from, to } = setUp();
    await service.send(from, to.deviceId, Buffer.from('old').toString('base64'));
    clock.advance(20 * DAY);
    await service.send(from, to.deviceId, Buffer.from('newer').toString('base64'));
    clock.advance(10 * DAY);
    assert.equal(await service.expire(), 0, 'exactly 30 days old: kept');
    clock.advance(1);
    assert.equal(await service.expire(), 1);
    assert.deepEqual((await service.page(to, 0, 100)).messages.map((m) => Buffer.from(m.payload, 'base64').toString()), ['newer']);
  });

  it('page by count and by about 1 MiB of payload, always one at least', async () => {
    const { service, store, from, to } = setUp();
    // Stored straight through the repository: larger than this service's own message limit, as a server with a larger one could have stored them.
    for (let i = 0; i < 3; i++) store.deviceMessages.insert(to.deviceId, from.deviceId, Buffer.alloc(600 * 1024, i), 1);
    const first = await service.page(to, 0, 100);
    assert.deepEqual([first.messages.length, first.more], [1, true]);
    const second = await service.page(to, first.messages[0]!.id, 100);
    assert.deepEqual([second.messages.length, second.more], [1, true]);
    assert.equal((await service.page(to, 0, 1000)).messages.length, 1);
  });

  it('are handed to the live connections after they are stored', async () => {
    const { service, live, from, to } = setUp();
    const sent = await service.send(from, to.deviceId, 'AAEC');
    assert.deepEqual(live, [sent]);
    assert.deepEqual((await service.page(to, 0, 100)).messages, [sent]);
  });

  it('come only from an approved device: a pending one or one without keys is forbidden and stores nothing', async () => {
    const { service, store, from, to } = setUp();
    await assert.rejects(service.send(to, from.deviceId, 'AAEC'), (e: any) => e.code === 'forbidden', 'no keys at all');
    store.keys.publish(to.deviceId, { encKey: 'e', signKey: 's', counter: 1, signature: 'sig', accountSignature: null }, 1);
    await assert.rejects(service.send(to, from.deviceId, 'AAEC'), (e: any) => e.code === 'forbidden', 'pending');
    assert.deepEqual((await service.page(from, 0, 100)).messages, []);
  });

  it('are refused from a device whose revocation committed, and to a target revoked before the transaction', async () => {
    const { service, store, from, to, third } = setUp();
    store.devices.revoke(to.deviceId, 5);
    store.devices.revoke(third.deviceId, 5);
    await assert.rejects(service.send(from, to.deviceId, 'AAEC'), (e: any) => e.code === 'not_found', 'the target is revoked');
    await assert.rejects(service.send(third, from.deviceId, 'AAEC'), (e: any) => e.code === 'unauthorized', 'the sender is revoked');
  });

  it('keep a queue per sender: one sender that fills its share (bytes or count) does not block another, and no retry_after pauses the sender', async () => {
    const { service, from, to, third } = setUp({ maxQueueBytes: 8, maxQueueMessages: 3 });
    await service.send(from, to.deviceId, Buffer.alloc(8).toString('base64'));
    await assert.rejects(service.send(from, to.deviceId, 'AA=='),
      (e: any) => e.code === 'rate_limited' && e.details?.limit === 'e2e.max_device_queue_bytes' && e.retryAfterSeconds === undefined,
    );
    for (let i = 0; i < 3; i++) await service.send(third, to.deviceId, 'AA==');
    await assert.rejects(service.send(third, to.deviceId, 'AA=='), (e: any) => e.code === 'rate_limited' && e.details?.limit === 'e2e.max_device_queue_messages');
    const page = await service.page(to, 0, 100);
    assert.equal(page.messages.length, 4);
    await service.ack(to, page.messages.at(-1)!.id);
    await service.send(third, to.deviceId, 'AA==');
    await service.send(from, to.deviceId, 'AA==');
  });
});
