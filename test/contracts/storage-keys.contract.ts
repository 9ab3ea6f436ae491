import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccountsStorage } from '../../src/storage/ports/accounts.js';
import type { KeysStorage } from '../../src/storage/ports/keys.js';
import { seedUser } from './storage-accounts.contract.js';

export interface KeysFixture {
  readonly keys: KeysStorage;
  readonly accounts: AccountsStorage;
  /** A thread both users are members of (who may see whose keys). */
  seedSharedThread(userIds: readonly number[]): Promise<void>;
  /** Another keys storage on the same database, as another node opens it; close() closes it too. */
  anotherKeys(): Promise<KeysStorage>;
  /** Async: a networked engine closes its pool. */
  close(): Promise<void>;
}

const NOW = 2_000_000;
const keysOf = (n: number, counter = 1) => ({ encKey: `enc${n}-${counter}`, signKey: `sign${n}`, counter, signature: `sig${n}-${counter}` });

/** The identity rules KeysStorage's units enforce atomically (signatures are the service's). */
export function keysStorageContract(name: string, open: () => Promise<KeysFixture>): void {
  describe(`keys storage contract: ${name}`, () => {
    it("stores a device's keys, refuses a changed or shared sign_key and a lower counter, and keeps same keys unchanged", async () => {
      const { keys, accounts, close } = await open();
      const { userId, deviceIds } = await seedUser(accounts, 'alice', 2);
      const [d1, d2] = deviceIds as [number, number];
      const publish = (deviceId: number, k: ReturnType<typeof keysOf>) => keys.publishDeviceKeys({ userId, deviceId, keys: k, certification: undefined, now: NOW });
      const stored = await publish(d1, keysOf(1, 2));
      assert.equal(stored.kind, 'stored');
      assert.deepEqual(await publish(d1, keysOf(1, 2)), { kind: 'unchanged' });
      assert.deepEqual(await publish(d1, { ...keysOf(1, 3), signKey: 'other' }), { kind: 'refused', reason: 'sign_key_changed' });
      assert.deepEqual(await publish(d2, keysOf(1, 1)), { kind: 'refused', reason: 'sign_key_taken' });
      assert.deepEqual(await publish(d1, keysOf(1, 1)), { kind: 'refused', reason: 'counter_lower', storedCounter: 2 });
      assert.deepEqual(await publish(d1, { ...keysOf(1, 2), encKey: 'new' }), { kind: 'refused', reason: 'enc_key_needs_higher_counter', storedCounter: 2 });
      assert.equal((await keys.deviceKeys(d1))?.counter, 2, 'the refusals changed nothing');
      assert.equal((await publish(d1, keysOf(1, 3))).kind, 'stored');
      await close();
    });

    it('refuses every unit of a device whose token no longer works, storing nothing', async () => {
      const { keys, accounts, close } = await open();
      const { userId, deviceIds } = await seedUser(accounts, 'bob', 1);
      const device = deviceIds[0] as number;
      await accounts.revokeDevices({ userId, deviceIds: [device], now: NOW });
      const outcome = await keys.publishDeviceKeys({ userId, deviceId: device, keys: keysOf(2), certification: undefined, now: NOW });
      assert.deepEqual(outcome, { kind: 'signed_out', state: { revoked: true, disabled: false, deleted: false } });
      assert.equal((await keys.publishAccountKey({ userId, deviceId: device, accountKey: 'A', signature: 's', reset: false, passwordConfirmed: false, now: NOW })).kind, 'signed_out');
      assert.equal(await keys.deviceKeys(device), undefined);
      assert.equal(await keys.accountKey(userId), undefined);
      await close();
    });

    it('sets an account key once; another needs a reset from an approved device or with the password, and uncertifies every device', async () => {
      const { keys, accounts, close } = await open();
      const { userId, deviceIds } = await seedUser(accounts, 'carol', 2);
      const [d1, d2] = deviceIds as [number, number];
      const account = (deviceId: number, accountKey: string, reset: boolean, passwordConfirmed = false) =>
        keys.publishAccountKey({ userId, deviceId, accountKey, signature: `s-${accountKey}`, reset, passwordConfirmed, now: NOW });
      assert.deepEqual(await account(d1, 'K1', false), { kind: 'stored', reset: false, uncertified: [] });
      assert.deepEqual(await account(d1, 'K1', false), { kind: 'unchanged' });
      assert.deepEqual(await account(d1, 'K2', false), { kind: 'refused', reason: 'other_account_key' });
      const certified = await keys.publishDeviceKeys({
        userId,
        deviceId: d1,
        keys: keysOf(3),
        certification: { accountSignature: 'cert1', verified: true, accountKey: 'K1' },
        now: NOW,
      });
      assert.equal(certified.kind === 'stored' && certified.keys.accountSignature, 'cert1');
      await keys.publishDeviceKeys({ userId, deviceId: d2, keys: keysOf(4), certification: undefined, now: NOW });
      assert.deepEqual(await account(d2, 'K2', true), { kind: 'refused', reason: 'not_approved' }, 'a pending device alone may not reset');
      const reset = await account(d1, 'K2', true);
      assert.equal(reset.kind, 'stored');
      assert.deepEqual(reset.kind === 'stored' && [reset.reset, reset.uncertified.map((keys) => [keys.deviceId, keys.accountSignature])], [true, [[d1, null]]]);
      assert.equal((await account(d2, 'K3', true, true)).kind, 'stored', 'with the password, from any device');
      assert.equal((await keys.accountKey(userId))?.accountKey, 'K3');
      await close();
    });

    it('refuses a certification against an account key that changed since it was checked', async () => {
      const { keys, accounts, close } = await open();
      const { userId, deviceIds } = await seedUser(accounts, 'dan', 2);
      const [d1, d2] = deviceIds as [number, number];
      const noAccount = await keys.publishDeviceKeys({ userId, deviceId: d1, keys: keysOf(5), certification: { accountSignature: 'c', verified: false, accountKey: undefined }, now: NOW });
      assert.deepEqual(noAccount, { kind: 'refused', reason: 'no_account_key' });
      await keys.publishAccountKey({ userId, deviceId: d1, accountKey: 'K1', signature: 's', reset: false, passwordConfirmed: false, now: NOW });
      const stale = await keys.publishDeviceKeys({ userId, deviceId: d1, keys: keysOf(5), certification: { accountSignature: 'c', verified: true, accountKey: 'K0' }, now: NOW });
      assert.deepEqual(stale, { kind: 'refused', reason: 'not_certified' });
      await keys.publishDeviceKeys({ userId, deviceId: d2, keys: keysOf(6), certification: undefined, now: NOW });
      const approve = (counter: number, accountKey: string, verified = true) =>
        keys.approveDevice({ userId, deviceId: d1, target: { deviceId: d2, counter, encKey: keysOf(6).encKey }, accountKey, accountSignature: 'cert2', verified });
      assert.deepEqual(await approve(0, 'K1'), { kind: 'refused', reason: 'not_certified', storedCounter: 1 }, 'the device rotated meanwhile');
      assert.deepEqual(await approve(1, 'K1', false), { kind: 'refused', reason: 'not_certified', storedCounter: 1 });
      const approved = await approve(1, 'K1');
      assert.equal(approved.kind === 'stored' && approved.keys.accountSignature, 'cert2');
      assert.deepEqual(await approve(1, 'K1'), { kind: 'unchanged' });
      assert.deepEqual(
        await keys.approveDevice({ userId, deviceId: d1, target: { deviceId: 9_999, counter: 1, encKey: 'x' }, accountKey: 'K1', accountSignature: 'c', verified: true }),
        { kind: 'refused', reason: 'no_device' },
      );
      await close();
    });

    it('keeps the identity rules between storages acting at once: one device gets a new sign_key, one account key is set first', async () => {
      const { keys, accounts, anotherKeys, close } = await open();
      const other = await anotherKeys();
      const { userId, deviceIds } = await seedUser(accounts, 'hana', 2);
      const [d1, d2] = deviceIds as [number, number];
      const published = await Promise.all([
        keys.publishDeviceKeys({ userId, deviceId: d1, keys: keysOf(9), certification: undefined, now: NOW }),
        other.publishDeviceKeys({ userId, deviceId: d2, keys: keysOf(9), certification: undefined, now: NOW }),
      ]);
      assert.deepEqual(published.map((outcome) => outcome.kind).sort(), ['refused', 'stored']);
      assert.deepEqual(published.find((outcome) => outcome.kind === 'refused'), { kind: 'refused', reason: 'sign_key_taken' });
      const set = await Promise.all([
        keys.publishAccountKey({ userId, deviceId: d1, accountKey: 'KA', signature: 's', reset: false, passwordConfirmed: false, now: NOW }),
        other.publishAccountKey({ userId, deviceId: d2, accountKey: 'KB', signature: 's', reset: false, passwordConfirmed: false, now: NOW }),
      ]);
      assert.deepEqual(set.map((outcome) => outcome.kind).sort(), ['refused', 'stored']);
      assert.deepEqual(set.find((outcome) => outcome.kind === 'refused'), { kind: 'refused', reason: 'other_account_key' });
      const winner = set[0]?.kind === 'stored' ? 'KA' : 'KB';
      assert.equal((await keys.accountKey(userId))?.accountKey, winner);
      await close();
    });

    it("reads users' keys in one snapshot, revoked devices included, and who shares a thread with whom", async () => {
      const { keys, accounts, seedSharedThread, close } = await open();
      const erin = await seedUser(accounts, 'erin', 2);
      const finn = await seedUser(accounts, 'finn', 1);
      await seedUser(accounts, 'gail', 1);
      await seedSharedThread([erin.userId, finn.userId]);
      const [e1, e2] = erin.deviceIds as [number, number];
      await keys.publishDeviceKeys({ userId: erin.userId, deviceId: e1, keys: keysOf(7), certification: undefined, now: NOW });
      await keys.publishDeviceKeys({ userId: erin.userId, deviceId: e2, keys: keysOf(8), certification: undefined, now: NOW });
      await keys.publishAccountKey({ userId: erin.userId, deviceId: e1, accountKey: 'KE', signature: 's', reset: false, passwordConfirmed: false, now: NOW });
      await accounts.revokeDevices({ userId: erin.userId, deviceIds: [e2], now: NOW });
      const found = await keys.keysOfUsers([erin.userId, finn.userId]);
      assert.deepEqual(found.accounts.map((key) => [key.userId, key.accountKey]), [[erin.userId, 'KE']]);
      assert.deepEqual(found.devices.map((keys) => [keys.deviceId, keys.revoked]), [
        [e1, false],
        [e2, true],
      ]);
      assert.deepEqual((await keys.revokedDeviceKeys(erin.userId)).map((keys) => keys.deviceId), [e2]);
      assert.deepEqual(await keys.usersEverSharingThreads(erin.userId), [finn.userId]);
      await close();
    });
  });
}
