import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PresenceStore } from '../../src/services/live/presence-store.js';

/** Views of one presence store from each node: one for an in-memory store, two or more for a networked one. */
export interface PresenceStoreFixture {
  readonly nodes: readonly PresenceStore[];
  close(): Promise<void>;
}

/** What every PresenceStore must do: on the in-memory store (one node) and on Redis (two nodes). */
export function presenceStoreContract(name: string, make: () => Promise<PresenceStoreFixture>): void {
  describe(`PresenceStore contract: ${name}`, () => {
    it('counts connection keys per user, each once, and says who has any', async () => {
      const fixture = await make();
      const store = fixture.nodes[0] as PresenceStore;
      assert.equal(await store.add(1, 'a:1'), 1);
      assert.equal(await store.add(1, 'a:1'), 1, 'adding a key again changes nothing');
      assert.equal(await store.add(1, 'a:2'), 2);
      assert.equal(await store.add(2, 'a:3'), 1);
      assert.deepEqual([...(await store.online([1, 2, 3]))].sort(), [1, 2]);
      assert.equal(await store.remove(1, 'a:1'), 1);
      assert.equal(await store.remove(1, 'a:1'), 1, 'removing a key again changes nothing');
      assert.equal(await store.remove(1, 'a:2'), 0);
      assert.equal(await store.remove(3, 'never'), 0, 'a user never seen has none');
      assert.deepEqual([...(await store.online([1, 2, 3]))], [2]);
      await fixture.close();
    });

    it('keeps one user online while any node has a key of theirs', async () => {
      const fixture = await make();
      const first = fixture.nodes[0] as PresenceStore;
      const last = fixture.nodes.at(-1) as PresenceStore;
      await first.add(5, 'a:1');
      assert.equal(await last.add(5, 'b:1'), 2);
      assert.equal(await first.remove(5, 'a:1'), 1);
      assert.deepEqual([...(await first.online([5]))], [5]);
      assert.equal(await last.remove(5, 'b:1'), 0);
      assert.deepEqual([...(await first.online([5]))], []);
      await fixture.close();
    });

    it("removes a node's keys by prefix, naming the users left with none", async () => {
      const fixture = await make();
      const store = fixture.nodes[0] as PresenceStore;
      await store.add(1, 'a:1');
      await store.add(1, 'b:1');
      await store.add(2, 'a:2');
      await store.add(3, 'b:2');
      assert.deepEqual((await store.removeAll('a:')).sort(), [2]);
      assert.deepEqual([...(await store.online([1, 2, 3]))].sort(), [1, 3]);
      assert.equal(await store.remove(1, 'b:1'), 0, "user 1's key of node a is gone");
      await fixture.close();
    });

    it('two survivors removing a dead node\'s keys at once name each emptied user once, and again nothing', async () => {
      const fixture = await make();
      const [first, last] = [fixture.nodes[0] as PresenceStore, fixture.nodes.at(-1) as PresenceStore];
      await first.add(1, 'a:1');
      await first.add(2, 'a:2');
      await first.add(2, 'a:grace:2');
      await last.add(3, 'b:1');
      const removed = await Promise.all([first.removeAll('a:'), last.removeAll('a:')]);
      assert.deepEqual(removed.flat().sort(), [1, 2]);
      assert.deepEqual(await last.removeAll('a:'), []);
      assert.deepEqual(await last.removeAll('z:'), [], 'a node never seen');
      assert.deepEqual([...(await first.online([1, 2, 3]))], [3]);
      await fixture.close();
    });
  });
}
