import assert from 'node:assert/strict';
import { FakeClock } from '../helpers/fake-clock.js';
import { describe, it } from 'node:test';
import { createKeyChecker } from '../../src/crypto/keys.js';
import { ChatError } from '../../src/errors.js';
import { KeyService, type PublishedKeys } from '../../src/services/keys.js';
import type { Fanout, Principal } from '../../src/services/types.js';
import { migrate, openDatabase } from '../../src/storage/database.js';
import { Store } from '../../src/storage/store.js';
import { SqliteKeysStorage } from '../../src/storage/sqlite/keys.js';
import { TestAccount, TestDevice, loadSodium } from '../helpers/e2e.js';

/**
 * KeyService's rules that sockets cannot race: a device
 * whose revocation committed (in any process) stores nothing, however it got
 * past authentication; a reset needs an approved device or the password.
 */

await loadSodium();

function setUp() {
  const db = openDatabase({ file: ':memory:', synchronous: 'normal', busyTimeoutMs: 1000 });
  migrate(db);
  const store = new Store(db);
  const userId = store.users.insert({ username: 'alice', displayName: 'alice', passwordHash: 'x', now: 1 }) as number;
  const [first, second] = [0, 1].map((i) => store.devices.insert({ userId, name: `d${i}`, platform: 'cli', tokenHash: Buffer.from(`t${i}`), now: 1 }) as number);
  const passwords: string[] = [];
  const keys = new KeyService({
    storage: new SqliteKeysStorage(store),
    clock: new FakeClock(10),
    fanout: { keysChanged: () => {}, accountChanged: () => {} } as unknown as Fanout,
    checker: createKeyChecker(),
    audit: { record: () => {} },
    passwords: {
      confirmPassword: async (_principal, password) => {
        passwords.push(password);
        if (password !== 'correct horse') throw new ChatError('invalid_credentials', 'the password is wrong', { field: 'password' });
      },
    },
  });
  const user = { id: userId, username: 'alice', displayName: 'alice' };
  const principal = (deviceId: number): Principal => ({ user, deviceId });
  return { store, keys, userId, first: principal(first!), second: principal(second!), passwords };
}

function published(frame: Record<string, unknown>): PublishedKeys {
  return { encKey: frame.enc_key as string, signKey: frame.sign_key as string, counter: frame.counter as number, signature: frame.signature as string, accountSignature: frame.account_signature as string | undefined };
}

const account = (a: TestAccount, reset = false, password?: string) => {
  const p = a.publication();
  return { accountKey: p.account_key, signature: p.signature, reset, password };
};

describe('key service: a revoked device stores nothing (checked in the transaction)', () => {
  it('keys_publish, account_publish and device_approve from a device whose revocation committed are unauthorized, and change nothing', async () => {
    const { store, keys, userId, first, second } = setUp();
    const acct = new TestAccount(userId);
    await keys.publishAccount(first, account(acct));
    const d1 = new TestDevice(userId, first.deviceId);
    await keys.publish(first, published(d1.publication(acct.certify(d1))));
    const d2 = new TestDevice(userId, second.deviceId);
    await keys.publish(second, published(d2.publication()));
    store.devices.revoke(first.deviceId, 20);
    const before = await keys.keys(second, undefined);
    const unauthorized = (error: unknown) => error instanceof ChatError && error.code === 'unauthorized';
    d1.rotate();
    await assert.rejects(keys.publish(first, published(d1.publication())), unauthorized);
    await assert.rejects(keys.publishAccount(first, account(new TestAccount(userId), true)), unauthorized);
    await assert.rejects(keys.approve(first, second.deviceId, acct.certify(d2)), unauthorized);
    assert.deepEqual(await keys.keys(second, undefined), before);
  });
});

describe('key service: who may reset the account key', () => {
  it('a pending device needs the password (checked once, before the transaction); an approved one does not', async () => {
    const { keys, userId, first, second, passwords } = setUp();
    const acct = new TestAccount(userId);
    await keys.publishAccount(first, account(acct));
    const d1 = new TestDevice(userId, first.deviceId);
    await keys.publish(first, published(d1.publication(acct.certify(d1))));
    await keys.publish(second, published(new TestDevice(userId, second.deviceId).publication()));
    const code = (expected: string, field: string) => (error: unknown) => error instanceof ChatError && error.code === expected && error.field === field;
    await assert.rejects(keys.publishAccount(second, account(new TestAccount(userId), true)), code('forbidden', 'password'));
    await assert.rejects(keys.publishAccount(second, account(new TestAccount(userId), true, 'wrong')), code('invalid_credentials', 'password'));
    assert.equal((await keys.keys(first, [userId])).accounts[0]?.accountKey, acct.publication().account_key);
    const fresh = new TestAccount(userId);
    assert.deepEqual(await keys.publishAccount(second, account(fresh, true, 'correct horse')), { changed: true });
    assert.deepEqual(passwords, ['wrong', 'correct horse']);
    // Now nobody is approved: the old approved device needs the password too; once certified under the new key, not.
    await assert.rejects(keys.publishAccount(first, account(new TestAccount(userId), true)), code('forbidden', 'password'));
    await keys.approve(second, first.deviceId, fresh.certify(d1));
    assert.deepEqual(await keys.publishAccount(first, account(new TestAccount(userId), true)), { changed: true });
  });
});
