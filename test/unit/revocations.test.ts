import assert from 'node:assert/strict';
import { systemClock } from '../../src/clock.js';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PasswordHasher } from '../../src/crypto/passwords.js';
import type { CloseReason } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { type LiveSession, SessionRegistry } from '../../src/realtime/sessions.js';
import type { LiveLink } from '../../src/realtime/channels.js';
import { MemoryDeviceLinks } from '../../src/realtime/memory-device-links.js';
import { AccountService } from '../../src/services/accounts.js';
import { AdminService } from '../../src/services/admin.js';
import { RateLimiter } from '../../src/services/rate-limiter.js';
import { RevocationWatcher } from '../../src/services/revocation-watcher.js';
import type { Revocation, RevocationListener } from '../../src/services/types.js';
import { ACCOUNT_EVENT_RETENTION_MS } from '../../src/storage/repositories/account-events.js';
import { migrate, openDatabase } from '../../src/storage/database.js';
import { Store } from '../../src/storage/store.js';
import { SqliteAccountEventsStorage } from '../../src/storage/sqlite/account-events.js';
import { SqliteAdminStorage } from '../../src/storage/sqlite/admin.js';
import { recordRevocationEvents as recordRevocations } from '../../src/storage/sqlite/revocation-events.js';
import { tempDir } from '../helpers/tmp.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { MemoryAuditLog } from '../../src/services/audit.js';

const silent = createLogger('silent');

/** Two connections to one database file, as the server and the admin CLI have. */
function twoProcesses(): { server: Store; cli: Store } {
  const file = join(tempDir(), 'chatd.db');
  const open = (): Store => new Store(openDatabase({ file, synchronous: 'normal', busyTimeoutMs: 1000 }));
  const first = openDatabase({ file, synchronous: 'normal', busyTimeoutMs: 1000 });
  migrate(first);
  first.close();
  return { server: open(), cli: open() };
}

function admin(store: Store, revocations: RevocationListener = { revoked: () => {} }): AdminService {
  const clock = systemClock;
  const hasher = new PasswordHasher({ memoryKib: 1024, timeCost: 1, parallelism: 1 });
  const storage = new SqliteAdminStorage(store);
  const accounts = new AccountService({
    storage,
    hasher,
    clock,
    settings: { registration: 'closed', passwordMinLength: 8, loginSlowdownMs: 0 },
    limiters: {
      perAddress: new RateLimiter(clock, 100, 60_000),
      failuresPerUsernameAndAddress: new RateLimiter(clock, 100, 60_000),
      failuresPerUsername: new RateLimiter(clock, 100, 60_000),
    },
    revocations,
    audit: new MemoryAuditLog(),
  });
  return new AdminService({ storage, accounts, hasher, clock, passwordMinLength: 8, revocations, audit: new MemoryAuditLog() });
}

function addUser(store: Store, username: string, devices: number): { userId: number; deviceIds: number[] } {
  const userId = store.users.insert({ username, displayName: username, passwordHash: 'x', now: 1 }) as number;
  const deviceIds = Array.from({ length: devices }, (_, i) =>
    store.devices.insert({ userId, name: `d${i}`, platform: 'cli', tokenHash: Buffer.from(`${username}-${i}`), now: 1 }),
  );
  return { userId, deviceIds };
}

/** The watcher once started (its cursor at the newest event); its timer is stopped at once, the test polls. */
async function started(watcher: RevocationWatcher): Promise<RevocationWatcher> {
  await watcher.start();
  watcher.stop();
  return watcher;
}

/** A listener that keeps what it is handed, one array per call. */
function recorder(): RevocationListener & { calls: Revocation[][] } {
  const calls: Revocation[][] = [];
  return { calls, revoked: (revocations) => void calls.push([...revocations]) };
}

describe('RevocationWatcher', () => {
  it('hands on a revocation another process commits once it looks, and only once', async () => {
    const { server, cli } = twoProcesses();
    const frank = addUser(cli, 'frank', 2);
    const listener = recorder();
    const watcher = await started(new RevocationWatcher({ events: new SqliteAccountEventsStorage(server), listener, log: silent, clock: systemClock, intervalMs: 1000 }));
    await admin(cli).revokeDevice(frank.deviceIds[1] as number);
    assert.equal(listener.calls.length, 0, 'nothing before it looks');
    await watcher.poll();
    assert.deepEqual(
      listener.calls.flat().map((r) => [r.userId, r.deviceId, r.reason]),
      [[frank.userId, frank.deviceIds[1], 'device_revoked']],
    );
    await watcher.poll();
    assert.equal(listener.calls.length, 1, 'not again at the next look');
  });

  it('reads no events while no other process has committed', async () => {
    const { server, cli } = twoProcesses();
    addUser(cli, 'grace', 1);
    let reads = 0;
    const sqlite = new SqliteAccountEventsStorage(server);
    const events = {
      changedElsewhere: () => sqlite.changedElsewhere(),
      latestAccountEventId: () => sqlite.latestAccountEventId(),
      accountEventsAfter: (id: number, limit: number) => (reads++, sqlite.accountEventsAfter(id, limit)),
    };
    const watcher = await started(new RevocationWatcher({ events, listener: recorder(), log: silent, clock: systemClock, intervalMs: 1000 }));
    await watcher.poll();
    assert.equal(reads, 1, 'the user added is a commit by another process: one read');
    for (let i = 0; i < 5; i++) await watcher.poll();
    assert.equal(reads, 1, 'nothing committed since: no read');
    server.transaction(() => server.users.insert({ username: 'own', displayName: 'own', passwordHash: 'x', now: 1 }));
    await watcher.poll();
    assert.equal(reads, 1, "this process's own commits are not another's");
  });

  it("hands on this process's own revocations at once, and not again when it reads the database", async () => {
    const { server, cli } = twoProcesses();
    const heidi = addUser(server, 'heidi', 2);
    const listener = recorder();
    const watcher = await started(new RevocationWatcher({ events: new SqliteAccountEventsStorage(server), listener, log: silent, clock: systemClock, intervalMs: 1000 }));
    await admin(server, watcher).revokeDevice(heidi.deviceIds[0] as number);
    assert.deepEqual(listener.calls.flat().map((r) => r.deviceId), [heidi.deviceIds[0]], 'at once, before any look');
    await admin(cli).revokeDevice(heidi.deviceIds[1] as number);
    await watcher.poll();
    assert.deepEqual(listener.calls.flat().map((r) => r.deviceId), [heidi.deviceIds[0], heidi.deviceIds[1]]);
  });

  it("does not skip another process's revocation committed just before one of this process's own", async () => {
    const { server, cli } = twoProcesses();
    const ivan = addUser(server, 'ivan', 2);
    const listener = recorder();
    const watcher = await started(new RevocationWatcher({ events: new SqliteAccountEventsStorage(server), listener, log: silent, clock: systemClock, intervalMs: 1000 }));
    await admin(cli).revokeDevice(ivan.deviceIds[0] as number);
    await admin(server, watcher).revokeDevice(ivan.deviceIds[1] as number);
    assert.deepEqual(listener.calls.flat().map((r) => r.deviceId).sort(), [...ivan.deviceIds].sort());
    await watcher.poll();
    assert.equal(listener.calls.flat().length, 2, 'each once');
  });

  it('ignores the revocations made before it started: no connection of this process predates them', async () => {
    const { server, cli } = twoProcesses();
    const judy = addUser(cli, 'judy', 1);
    await admin(cli).setDisabled('judy', true);
    const listener = recorder();
    const watcher = await started(new RevocationWatcher({ events: new SqliteAccountEventsStorage(server), listener, log: silent, clock: systemClock, intervalMs: 1000 }));
    await watcher.poll();
    assert.equal(listener.calls.length, 0);
    await admin(cli).deleteUser('judy');
    await watcher.poll();
    assert.deepEqual(listener.calls.flat().map((r) => [r.userId, r.deviceId, r.reason]), [[judy.userId, null, 'user_deleted']]);
  });

  it('looks every interval on its clock, and no longer once stopped', async () => {
    const { server, cli } = twoProcesses();
    const nina = addUser(cli, 'nina', 1);
    const listener = recorder();
    const clock = new FakeClock();
    const watcher = new RevocationWatcher({ events: new SqliteAccountEventsStorage(server), listener, log: silent, clock, intervalMs: 250 });
    await watcher.start();
    await admin(cli).revokeDevice(nina.deviceIds[0] as number);
    clock.advance(249);
    await new Promise((next) => setImmediate(next));
    assert.equal(listener.calls.length, 0, 'not before the interval');
    clock.advance(1);
    for (let turn = 0; turn < 100 && listener.calls.length === 0; turn++) await new Promise((next) => setImmediate(next));
    assert.deepEqual(listener.calls.flat().map((r) => r.deviceId), [nina.deviceIds[0]]);
    watcher.stop();
    assert.equal(clock.pending, 0, 'its timer is gone');
  });

  it('reads a burst larger than one page in order, every event once', async () => {
    const { server, cli } = twoProcesses();
    const many = addUser(cli, 'many', 1_200);
    const listener = recorder();
    const watcher = await started(new RevocationWatcher({ events: new SqliteAccountEventsStorage(server), listener, log: silent, clock: systemClock, intervalMs: 1000 }));
    cli.transaction(() => {
      const deviceIds = cli.devices.revokeAllOfUser(many.userId, 0, 5);
      recordRevocations(cli, { userId: many.userId, deviceIds, reason: 'password_changed', now: 5 });
    });
    await watcher.poll();
    const ids = listener.calls.flat().map((r) => r.id);
    assert.equal(ids.length, 1_200);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
  });
});

describe('the admin services record revocations for the running server', () => {
  it('each admin action that ends connections records its events in the same commit; enable records none', async () => {
    const { cli } = twoProcesses();
    const kim = addUser(cli, 'kim', 2);
    const leo = addUser(cli, 'leo', 1);
    const service = admin(cli);
    const reasons = (): Array<[number, number | null, string]> =>
      cli.accountEvents.after(0, 100).map((row) => [row.user_id, row.device_id, row.reason]);
    await service.revokeDevice(kim.deviceIds[0] as number);
    await service.setPassword('kim', 'new-password', { revokeDevices: true });
    await service.setPassword('kim', 'newer-password', { revokeDevices: false });
    await service.setDisabled('leo', true);
    await service.setDisabled('leo', true);
    await service.setDisabled('leo', false);
    await service.deleteUser('leo');
    assert.deepEqual(reasons(), [
      [kim.userId, kim.deviceIds[0], 'device_revoked'],
      [kim.userId, kim.deviceIds[1], 'password_changed'],
      [leo.userId, null, 'user_disabled'],
      [leo.userId, null, 'user_deleted'],
    ]);
    await assert.rejects(service.revokeDevice(kim.deviceIds[0] as number), /already revoked/);
    assert.equal(reasons().length, 4, 'a refused revocation records nothing');
  });

  it('keep the events table small: a day-old event is pruned by the next write, and ids are never used again', async () => {
    const { cli } = twoProcesses();
    const mia = addUser(cli, 'mia', 2);
    const first = cli.transaction(() => recordRevocations(cli, { userId: mia.userId, deviceIds: [mia.deviceIds[0] as number], reason: 'device_revoked', now: 1_000 }));
    const later = 1_000 + ACCOUNT_EVENT_RETENTION_MS + 1;
    const second = cli.transaction(() => recordRevocations(cli, { userId: mia.userId, deviceIds: null, reason: 'user_disabled', now: later }));
    assert.deepEqual(cli.accountEvents.after(0, 10).map((row) => row.id), [second[0]?.id]);
    assert.ok((second[0]?.id ?? 0) > (first[0]?.id ?? 0));
    const third = cli.transaction(() => recordRevocations(cli, { userId: mia.userId, deviceIds: null, reason: 'user_deleted', now: later + 2 * ACCOUNT_EVENT_RETENTION_MS }));
    assert.equal(cli.accountEvents.latestId(), third[0]?.id);
    assert.ok((third[0]?.id ?? 0) > (second[0]?.id ?? 0), 'the table emptied, yet the id is new');
  });
});

/** A session as the registry and the device links see it, remembering how it was closed. */
class FakeSession implements LiveSession, LiveLink {
  closedWith: { reason: CloseReason; message: string } | undefined;
  readonly deadline = Number.MAX_SAFE_INTEGER;
  readonly key: string;
  readonly follower = { subscribe: (): void => {}, unsubscribe: (): void => {} };
  constructor(
    readonly deviceId: number,
    readonly userId: number,
  ) {
    this.key = `test:${FakeSession.count++}`;
  }
  static count = 0;
  close(reason: CloseReason, message: string): void {
    this.closedWith ??= { reason, message };
  }
  expire(): void {}
  checkBackpressure(): void {}
  deliver(): void {}
}

describe('SessionRegistry on revocations', () => {
  function registryWith(signedIn: Set<number>, sessions: FakeSession[]): SessionRegistry {
    const links = new MemoryDeviceLinks<LiveLink>();
    const registry = new SessionRegistry(async (deviceId) => signedIn.has(deviceId), links);
    for (const session of sessions) {
      registry.add(session);
      links.attach(session);
    }
    return registry;
  }

  it("closes with device_revoked every session of a revoked device, and no other device's", async () => {
    const [a, b, other] = [new FakeSession(1, 10), new FakeSession(1, 10), new FakeSession(2, 10)];
    const registry = registryWith(new Set([2]), [a, b, other]);
    registry.revoked([{ id: 1, userId: 10, deviceId: 1, reason: 'device_revoked' }]);
    await new Promise((settled) => setImmediate(settled));
    assert.deepEqual([a.closedWith?.reason, b.closedWith?.reason, other.closedWith], ['device_revoked', 'device_revoked', undefined]);
    assert.match(a.closedWith?.message ?? '', /logged out/);
  });

  it("closes all of a user's devices for a user-wide revocation, saying why, and no other user's", async () => {
    const [phone, laptop, stranger] = [new FakeSession(1, 10), new FakeSession(2, 10), new FakeSession(3, 11)];
    const registry = registryWith(new Set([3]), [phone, laptop, stranger]);
    registry.revoked([{ id: 1, userId: 10, deviceId: null, reason: 'user_disabled' }]);
    await new Promise((settled) => setImmediate(settled));
    assert.deepEqual([phone.closedWith?.reason, laptop.closedWith?.reason, stranger.closedWith], ['device_revoked', 'device_revoked', undefined]);
    assert.match(phone.closedWith?.message ?? '', /account was disabled/);
  });

  it('closes them once the answer comes when whether a token works is a round trip', async () => {
    const [a, other] = [new FakeSession(1, 10), new FakeSession(2, 10)];
    const registry = registryWith(new Set([2]), [a, other]);
    registry.revoked([{ id: 1, userId: 10, deviceId: null, reason: 'user_disabled' }]);
    assert.deepEqual([a.closedWith, other.closedWith], [undefined, undefined], 'nothing closes before the answer');
    await Promise.resolve();
    assert.deepEqual([a.closedWith?.reason, other.closedWith], ['device_revoked', undefined]);
  });

  it('closes them when whether the token works cannot be told (the check failed): nothing brings the revocation again', async () => {
    const session = new FakeSession(1, 10);
    const links = new MemoryDeviceLinks<LiveLink>();
    const registry = new SessionRegistry(() => Promise.reject(new Error('disk I/O error')), links);
    registry.add(session);
    links.attach(session);
    registry.revoked([{ id: 1, userId: 10, deviceId: 1, reason: 'device_revoked' }]);
    await new Promise((settled) => setImmediate(settled));
    assert.equal(session.closedWith?.reason, 'device_revoked');
  });

  it('keeps the sessions of a device whose token works again by the time the revocation arrives (disabled, then enabled)', async () => {
    const session = new FakeSession(1, 10);
    const registry = registryWith(new Set([1]), [session]);
    registry.revoked([{ id: 1, userId: 10, deviceId: null, reason: 'user_disabled' }]);
    await new Promise((settled) => setImmediate(settled));
    assert.equal(session.closedWith, undefined);
  });
});
