import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeviceMessageService } from '../../src/services/device-messages.js';
import type { DeviceMessage, Principal } from '../../src/services/types.js';
import { migrate, openDatabase } from '../../src/storage/database.js';
import { Store } from '../../src/storage/store.js';

const DAY = 86_400_000;

/** A user with two devices on a fresh in-memory database, a clock the test moves, and the service. */
function setUp(): { service: DeviceMessageService; store: Store; clock: { time: number; now(): number }; from: Principal; to: Principal; live: DeviceMessage[] } {
  const db = openDatabase({ file: ':memory:', synchronous: 'normal', busyTimeoutMs: 1000 });
  migrate(db);
  const store = new Store(db);
  const userId = store.users.insert({ username: 'alice', displayName: 'alice', passwordHash: 'x', now: 1 }) as number;
  const [first, second] = [0, 1].map((i) => store.devices.insert({ userId, name: `d${i}`, platform: 'cli', tokenHash: Buffer.from(`t${i}`), now: 1 }));
  const clock = { time: 10 * DAY, now: () => clock.time };
  const live: DeviceMessage[] = [];
  const service = new DeviceMessageService({
    store,
    clock,
    fanout: { deviceMessage: (_user, _device, message) => live.push(message) },
    settings: { maxMessageBytes: 1024, maxQueueBytes: 64 * 1024, ttlMs: 30 * DAY },
  });
  const user = { id: userId, username: 'alice', displayName: 'alice' };
  return { service, store, clock, from: { user, deviceId: first as number }, to: { user, deviceId: second as number }, live };
}

describe('device messages', () => {
  it('expire after e2e.device_message_ttl_days, and not before', () => {
    const { service, clock, from, to } = setUp();
    service.send(from, to.deviceId, Buffer.from('old').toString('base64'));
    clock.time += 20 * DAY;
    service.send(from, to.deviceId, Buffer.from('newer').toString('base64'));
    clock.time += 10 * DAY;
    assert.equal(service.expire(), 0, 'exactly 30 days old: kept');
    clock.time += 1;
    assert.equal(service.expire(), 1);
    assert.deepEqual(service.page(to, 0, 100).messages.map((m) => Buffer.from(m.payload, 'base64').toString()), ['newer']);
  });

  it('page by count and by about 1 MiB of payload, always one at least', () => {
    const { service, store, from, to } = setUp();
    // Stored straight through the repository: larger than this service's own message limit, as a server with a larger one could have stored them.
    for (let i = 0; i < 3; i++) store.deviceMessages.insert(to.deviceId, from.deviceId, Buffer.alloc(600 * 1024, i), 1);
    const first = service.page(to, 0, 100);
    assert.deepEqual([first.messages.length, first.more], [1, true]);
    const second = service.page(to, first.messages[0]!.id, 100);
    assert.deepEqual([second.messages.length, second.more], [1, true]);
    assert.equal(service.page(to, 0, 1000).messages.length, 1);
  });

  it('are handed to the live connections after they are stored', () => {
    const { service, live, from, to } = setUp();
    const sent = service.send(from, to.deviceId, 'AAEC');
    assert.deepEqual(live, [sent]);
    assert.deepEqual(service.page(to, 0, 100).messages, [sent]);
  });
});
