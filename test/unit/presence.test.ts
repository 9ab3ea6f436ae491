import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryPresenceStore } from '../../src/realtime/memory-presence-store.js';
import { PresenceService } from '../../src/services/presence.js';
import type { Fanout, PresenceView } from '../../src/services/types.js';
import { migrate, openDatabase } from '../../src/storage/database.js';
import { SqlitePresenceStorage } from '../../src/storage/sqlite/presence.js';
import { Store } from '../../src/storage/store.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** The presence changes the service announces, with what a read gives right after. */
interface Announced {
  readonly announced: PresenceView;
  readonly readBack: Promise<PresenceView | undefined>;
  /** The row's last-active time when it was announced: what another node (without this one's BatchedTimes) reads. */
  readonly stored: number | null | undefined;
}

/** Lets the presence store's promises settle (the in-memory store answers in a microtask or two) and the group commit run (a turn later): an announcement waits for its commit. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function setUp() {
  const db = openDatabase({ file: ':memory:', synchronous: 'full', busyTimeoutMs: 1000 });
  migrate(db);
  const store = new Store(db);
  const alice = store.users.insert({ username: 'alice', displayName: 'Alice', passwordHash: 'x', now: 1 }) as number;
  const bob = store.users.insert({ username: 'bob', displayName: 'Bob', passwordHash: 'x', now: 1 }) as number;
  // Bob shares his presence with Alice by adding her.
  store.contacts.add(bob, alice, 1);
  const clock = new FakeClock(1_000);
  const seen: Announced[] = [];
  const fanout: Pick<Fanout, 'presence'> = {
    presence: (view) => {
      // The same turn as the announcement: the group commit has not run yet.
      seen.push({ announced: view, readBack: service.statusFor(alice, [bob]).then((views) => views[0]), stored: store.users.findById(view.userId)?.last_active_at });
    },
  };
  const service = new PresenceService({ storage: new SqlitePresenceStorage(store), clock, fanout: fanout as Fanout, connections: new MemoryPresenceStore(), offlineGraceMs: 5_000, node: 'n' });
  return { db, store, alice, bob, clock, seen, service };
}

describe('PresenceService', () => {
  it('the announcement follows the commit of the last-active time: a read right after it, here or on another node, gives the announced time', async () => {
    const { db, store, alice, bob, clock, seen, service } = setUp();
    service.connected(alice, 'n:1');
    service.connected(bob, 'n:2');
    await settle();
    clock.time = 2_000;
    service.disconnected(bob, 'n:2');
    await settle();
    assert.equal((await service.statusFor(alice, [bob]))[0]?.online, true, 'online during the grace period');
    clock.advance(5_000);
    await settle();
    const announced = await Promise.all(seen.map(async (s) => [s.announced.online, s.announced.lastActiveAt, (await s.readBack)?.lastActiveAt, s.stored]));
    assert.deepEqual(announced, [
      [true, 1_000, 1_000, 1_000],
      [false, 7_000, 7_000, 7_000],
    ], 'what a read gives, here or from the row, is what was announced');
    assert.equal(store.users.findById(bob)?.last_active_at, 7_000, 'stored by the group commit before it was announced');
    assert.equal((await service.statusFor(alice, [bob]))[0]?.online, false);
    await service.stop();
    db.close();
  });

  it('a user back within the grace period never looked offline; a second connection keeps them online', async () => {
    const { db, alice, bob, clock, seen, service } = setUp();
    service.connected(alice, 'n:1');
    service.connected(bob, 'n:2');
    service.connected(bob, 'm:1');
    await settle();
    service.disconnected(bob, 'n:2');
    await settle();
    clock.advance(10_000);
    await settle();
    assert.equal(clock.pending, 0, 'no grace period: another connection is open');
    service.disconnected(bob, 'm:1');
    await settle();
    clock.advance(4_000);
    service.connected(bob, 'n:3');
    await settle();
    clock.advance(10_000);
    await settle();
    assert.deepEqual(seen.map((s) => s.announced.online), [true], 'only the first coming online was announced');
    assert.equal((await service.statusFor(alice, [bob]))[0]?.online, true);
    await service.stop();
    db.close();
  });

  it('a user whose two connections close in the same turn is still online during the grace period', async () => {
    const { db, alice, bob, clock, seen, service } = setUp();
    service.connected(alice, 'n:0');
    service.connected(bob, 'n:1');
    service.connected(bob, 'n:2');
    await settle();
    service.disconnected(bob, 'n:1');
    service.disconnected(bob, 'n:2');
    await settle();
    assert.equal(clock.pending, 1, 'the grace timer runs');
    assert.equal((await service.statusFor(alice, [bob]))[0]?.online, true, 'online during the grace period');
    clock.advance(5_000);
    await settle();
    assert.equal((await service.statusFor(alice, [bob]))[0]?.online, false, 'offline once it is over');
    assert.deepEqual(seen.map((s) => s.announced.online), [true, false]);
    await service.stop();
    db.close();
  });

  it("keeps the grace period under the node's own key: another node's grace for the user is not touched, and the node's keys go with it", async () => {
    const { db, alice, bob, clock, store } = setUp();
    const connections = new MemoryPresenceStore();
    const fanout = { presence: () => {} } as unknown as Fanout;
    const onNode = (node: string) => new PresenceService({ storage: new SqlitePresenceStorage(store), clock, fanout, connections, offlineGraceMs: 5_000, node });
    const [a, b] = [onNode('a'), onNode('b')];
    // Bob on both nodes; both connections drop, on node b a little later.
    a.connected(bob, 'a:1');
    b.connected(bob, 'b:1');
    await settle();
    a.disconnected(bob, 'a:1');
    await settle();
    clock.advance(1_000);
    b.disconnected(bob, 'b:1');
    await settle();
    // Node a's grace ends first; node b's still holds him online.
    clock.advance(4_000);
    await settle();
    assert.equal((await a.statusFor(alice, [bob]))[0]?.online, true, "node b's grace period still runs");
    // Node b stops without its timers (it died): its keys, grace included, are removed by prefix.
    assert.deepEqual(await connections.removeAll('b:'), [bob]);
    assert.equal((await a.statusFor(alice, [bob]))[0]?.online, false);
    clock.advance(1_000);
    await settle();
    await a.stop();
    await b.stop();
    db.close();
  });

  it("a dead node's users left with no connection are announced offline by the survivor that removed its keys", async () => {
    const { db, store, alice, bob, clock } = setUp();
    const connections = new MemoryPresenceStore();
    const announced: PresenceView[] = [];
    const fanout = { presence: (view: PresenceView) => announced.push(view) } as unknown as Fanout;
    const onNode = (node: string) => new PresenceService({ storage: new SqlitePresenceStorage(store), clock, fanout, connections, offlineGraceMs: 5_000, node });
    const [dead, survivor] = [onNode('a'), onNode('b')];
    survivor.connected(alice, 'b:1');
    dead.connected(bob, 'a:1');
    await settle();
    announced.length = 0;
    clock.set(4_000);
    survivor.wentOffline(await connections.removeAll('a:'));
    await settle();
    assert.deepEqual(announced, [{ userId: bob, online: false, lastActiveAt: 4_000 }]);
    await store.batcher.submit(() => undefined);
    assert.equal(store.users.findById(bob)?.last_active_at, 4_000);
    await survivor.stop();
    db.close();
  });

  it('a connection that closed just before the stop counts: the user is stored as last active at the stop', async () => {
    const { db, store, bob, clock, service } = setUp();
    service.connected(bob, 'n:1');
    await settle();
    clock.set(3_000);
    service.disconnected(bob, 'n:1');
    // No turn in between: the store's answers are still on their way.
    await service.stop();
    await store.batcher.submit(() => undefined);
    assert.equal(store.users.findById(bob)?.last_active_at, 3_000);
    assert.equal(clock.pending, 0, 'no grace timer left behind');
    db.close();
  });
});
