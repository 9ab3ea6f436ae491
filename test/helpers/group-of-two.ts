import { migrate, openDatabase } from '../../src/storage/database.js';
import { Store } from '../../src/storage/store.js';
import { FakeClock } from './fake-clock.js';

/** Alice (the owner) and Bob in a group, a phone each, on SQLite :memory:, with a FakeClock: the in-process tests' start. */
export function groupOfTwo() {
  const db = openDatabase({ file: ':memory:', synchronous: 'full', busyTimeoutMs: 1000 });
  migrate(db);
  const store = new Store(db);
  const clock = new FakeClock();
  const alice = store.users.insert({ username: 'alice', displayName: 'Alice', passwordHash: 'x', now: 1 }) as number;
  const bob = store.users.insert({ username: 'bob', displayName: 'Bob', passwordHash: 'x', now: 1 }) as number;
  const alicePhone = store.devices.insert({ userId: alice, name: 'phone', platform: 'cli', tokenHash: Buffer.from('a'), now: 1 });
  const bobPhone = store.devices.insert({ userId: bob, name: 'phone', platform: 'cli', tokenHash: Buffer.from('b'), now: 1 });
  const thread = store.transaction(() => {
    const id = store.threads.insert('group', 'test', null, alice, 1);
    store.threads.addMember(id, alice, 'owner', 0, 1);
    store.threads.addMember(id, bob, 'member', 0, 1);
    return id;
  });
  return { db, store, clock, alice, bob, alicePhone, bobPhone, thread };
}
