import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createKeyChecker } from '../../src/crypto/keys.js';
import { ChatError } from '../../src/errors.js';
import { KeyService, type PublishedKeys } from '../../src/services/keys.js';
import type { DeviceKeys, Fanout, Principal } from '../../src/services/types.js';
import { SqliteAccountsStorage } from '../../src/storage/sqlite/accounts.js';
import { SqliteKeysStorage } from '../../src/storage/sqlite/keys.js';
import { memoryStore, seedThread } from '../contracts/sqlite-fixture.js';
import { seedUser } from '../contracts/storage-accounts.contract.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TestAccount, TestDevice, loadSodium } from '../helpers/e2e.js';

await loadSodium();

/** Two users who share a thread and a third who does not, KeyService over SQLite in memory, and a Fanout that records announcements. */
async function setUp() {
  const store = memoryStore();
  const accounts = new SqliteAccountsStorage(store);
  const [ann, bo, cy] = [await seedUser(accounts, 'ann', 2), await seedUser(accounts, 'bo', 1), await seedUser(accounts, 'cy', 1)];
  seedThread(store, [ann.userId, bo.userId], { userId: ann.userId, deviceId: ann.deviceIds[0] as number }, 0, 1);
  const announced: Array<{ keys: DeviceKeys; audience: number[] }> = [];
  const fanout = {
    keysChanged: (keys: DeviceKeys, audience: ReadonlySet<number>) => void announced.push({ keys, audience: [...audience].sort((a, b) => a - b) }),
    accountChanged: () => {},
  } as unknown as Fanout;
  const keys = new KeyService({
    storage: new SqliteKeysStorage(store),
    clock: new FakeClock(),
    fanout,
    checker: createKeyChecker(),
    audit: { record: () => {} },
    passwords: { confirmPassword: async () => {} },
  });
  const principal = (user: { userId: number; deviceIds: number[] }, name: string, index = 0): Principal => ({
    user: { id: user.userId, username: name, displayName: name },
    deviceId: user.deviceIds[index] as number,
  });
  return { store, accounts, keys, announced, ann, bo, cy, principal };
}

function published(frame: Record<string, unknown>): PublishedKeys {
  return { encKey: frame.enc_key as string, signKey: frame.sign_key as string, counter: frame.counter as number, signature: frame.signature as string, accountSignature: frame.account_signature as string | undefined };
}

const conflict = (field: string, message: RegExp) => (error: unknown) => error instanceof ChatError && error.code === 'key_conflict' && error.field === field && message.test(error.message);

describe('KeyService in process', () => {
  it('announces published keys to the owner and whoever shares a thread with them, once, and refuses identity changes with key_conflict', async () => {
    const { keys, announced, ann, bo, principal } = await setUp();
    const device = new TestDevice(ann.userId, ann.deviceIds[0] as number);
    assert.deepEqual(await keys.publish(principal(ann, 'ann'), published(device.publication())), { changed: true });
    assert.deepEqual(announced.map((a) => [a.keys.deviceId, a.audience]), [[device.deviceId, [ann.userId, bo.userId].sort((x, y) => x - y)]]);
    assert.deepEqual(await keys.publish(principal(ann, 'ann'), published(device.publication())), { changed: false });
    assert.equal(announced.length, 1, 'the same keys again: no announcement');
    const older = published(device.publication());
    device.rotate();
    await keys.publish(principal(ann, 'ann'), published(device.publication()));
    await assert.rejects(keys.publish(principal(ann, 'ann'), older), conflict('counter', /counter 1 is lower than the stored 2/));
    const thief = new TestDevice(ann.userId, ann.deviceIds[1] as number);
    const stolen = { ...published(thief.publication()), signKey: device.signKey };
    await assert.rejects(keys.publish(principal(ann, 'ann', 1), stolen), (error: unknown) => error instanceof ChatError && error.code === 'invalid_field', 'a signature by another key is refused before storage');
    assert.equal(announced.length, 2);
  });

  it('serves keys only of users who share a thread with the caller, and announces revoked devices as revoked', async () => {
    const { keys, accounts, announced, ann, bo, cy, principal } = await setUp();
    const account = new TestAccount(ann.userId);
    const p = account.publication();
    await keys.publishAccount(principal(ann, 'ann'), { accountKey: p.account_key, signature: p.signature, reset: false });
    const device = new TestDevice(ann.userId, ann.deviceIds[0] as number);
    await keys.publish(principal(ann, 'ann'), published(device.publication(account.certify(device))));
    assert.deepEqual((await keys.keys(principal(bo, 'bo'), [ann.userId])).devices.map((d) => [d.deviceId, d.accountSignature !== null]), [[device.deviceId, true]]);
    assert.deepEqual(await keys.keys(principal(cy, 'cy'), [ann.userId]), { accounts: [], devices: [] }, 'no shared thread: as if there were no keys');
    const change = await accounts.revokeDevices({ userId: ann.userId, deviceIds: [device.deviceId], now: 5 });
    announced.length = 0;
    await keys.revoked(change.events.map((event) => ({ id: event.id, userId: event.userId, deviceId: event.deviceId, reason: event.reason })));
    assert.deepEqual(announced.map((a) => [a.keys.deviceId, a.keys.revoked]), [[device.deviceId, true]]);
  });
});
