import assert from 'node:assert/strict';
import { systemClock } from '../../src/clock.js';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PresenceService } from '../../src/services/presence.js';
import type { Fanout, PresenceView } from '../../src/services/types.js';
import { migrate, openDatabase } from '../../src/storage/database.js';
import { Store } from '../../src/storage/store.js';
import { tempDir } from '../helpers/tmp.js';

/** The presence changes the service announces, with what a read gives at that very moment. */
interface Announced {
  readonly announced: PresenceView;
  readonly readBack: PresenceView | undefined;
}

describe('PresenceService', () => {
  it('a read right after an announcement, before the group commit, gives the announced last-active time; the commit stores it', { timeout: 10_000 }, async () => {
    const db = openDatabase({ file: join(tempDir(), 'chatd.db'), synchronous: 'full', busyTimeoutMs: 1000 });
    migrate(db);
    const store = new Store(db);
    const alice = store.users.insert({ username: 'alice', displayName: 'Alice', passwordHash: 'x', now: 1 }) as number;
    const bob = store.users.insert({ username: 'bob', displayName: 'Bob', passwordHash: 'x', now: 1 }) as number;
    // Bob shares his presence with Alice by adding her.
    store.contacts.add(bob, alice, 1);
    let now = 1_000;
    const seen: Announced[] = [];
    let wentOffline!: () => void;
    const announced = new Promise<void>((resolve) => (wentOffline = resolve));
    const fanout: Pick<Fanout, 'presence'> = {
      presence: (view) => {
        // The same turn as the announcement: the group commit has not run yet.
        seen.push({ announced: view, readBack: service.statusFor(alice, [bob])[0] });
        if (!view.online) wentOffline();
      },
    };
    const service = new PresenceService({ store, clock: { ...systemClock, now: () => now }, fanout: fanout as Fanout, offlineGraceMs: 1 });
    service.connected(alice);
    service.connected(bob);
    now = 2_000;
    service.disconnected(bob);
    // The grace timer is unref'd (it must not hold a stopping server open); this one holds the test open meanwhile.
    const keepAlive = setInterval(() => {}, 1_000);
    await announced;
    clearInterval(keepAlive);
    assert.deepEqual(
      seen.map((s) => [s.announced.online, s.announced.lastActiveAt, s.readBack?.lastActiveAt]),
      [
        [true, 1_000, 1_000],
        [false, 2_000, 2_000],
      ],
      'what a read gives is what was announced, committed or not',
    );
    await store.batcher.submit(() => undefined);
    assert.equal(store.users.findById(bob)?.last_active_at, 2_000, 'stored by the group commit');
    assert.equal(service.statusFor(alice, [bob])[0]?.lastActiveAt, 2_000);
    service.stop();
    db.close();
  });
});
