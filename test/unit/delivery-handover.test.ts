import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryDeviceLinks } from '../../src/realtime/memory-device-links.js';
import { DeliveryService } from '../../src/services/delivery.js';
import type { DeviceLinks, Link } from '../../src/services/live/device-links.js';
import { SqliteDeliveryStorage } from '../../src/storage/sqlite/delivery.js';
import { SqliteMessagingStorage } from '../../src/storage/sqlite/messaging.js';
import { groupOfTwo } from '../helpers/group-of-two.js';

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Bob's phone in a group with alice, one database; device links shared by the nodes, each answer a turn late (a networked store). */
function cluster() {
  const { db, store, clock, alice, bob, alicePhone, bobPhone, thread } = groupOfTwo();
  const settings = { maxMessages: 1_000, readDiffusionAbove: 100, push: { apns: true, fcm: false } };
  const messaging = new SqliteMessagingStorage(store, settings);
  const send = async (clientMsgId: string): Promise<number> => {
    const outcome = await messaging.appendMessage({
      threadId: thread,
      senderUserId: alice,
      senderDeviceId: alicePhone,
      clientMsgId,
      content: { kind: 'text' },
      bodyJson: '{"text":"hi"}',
      now: clock.now(),
      requireE2eEverywhere: false,
    });
    assert.equal(outcome.kind, 'stored');
    return outcome.kind === 'stored' ? outcome.message.id : 0;
  };
  const inner = new MemoryDeviceLinks<Link>();
  const later = <T>(value: T): Promise<T> => new Promise((resolve) => setImmediate(() => resolve(value)));
  const links: DeviceLinks<Link> = {
    attach: (link) => inner.attach(link),
    detach: (link) => inner.detach(link).then(later),
    release: (deviceId, key) => inner.release(deviceId, key).then(later),
    endLiveness: (deviceId) => inner.endLiveness(deviceId).then(later),
    markLive: (link) => inner.markLive(link).then(later),
    forgetLiveness: (deviceId, key) => inner.forgetLiveness(deviceId, key),
    ofDevice: (deviceId) => inner.ofDevice(deviceId),
    ofUser: (userId) => inner.ofUser(userId),
    isLocal: (key) => inner.isLocal(key),
  };
  let pushWakes = 0;
  const node = () =>
    new DeliveryService({
      storage: new SqliteDeliveryStorage(store),
      links,
      broker: { publishControl: () => {} },
      clock,
      pushes: { pushQueued: () => pushWakes++ },
      settings: { ...settings, inboxMaxAgeMs: 86_400_000 },
    });
  return { db, store, bob, bobPhone, links, node, send, pushWakes: () => pushWakes };
}

describe('DeliveryService handover across nodes', () => {
  it("a device reconnecting on another node reads its inbox only after the old connection's handover committed", async () => {
    const c = cluster();
    const [nodeA, nodeB] = [c.node(), c.node()];
    const old: Link = { key: 'A:1', deviceId: c.bobPhone, userId: c.bob };
    c.links.attach(old);
    await nodeA.connectionOpened(old);
    await nodeA.connectionLive(old);
    assert.deepEqual(c.store.inbox.liveDevices(), [c.bobPhone]);
    const id = await c.send('while-live');
    assert.deepEqual(c.store.inbox.pending(c.bobPhone, 0, 10), [], 'live: no inbox row yet');
    // The phone's connection to A drops; it reconnects through the load balancer to B at once.
    const closing = nodeA.connectionClosed(old);
    const fresh: Link = { key: 'B:1', deviceId: c.bobPhone, userId: c.bob };
    c.links.attach(fresh);
    await nodeB.connectionOpened(fresh);
    const page = await nodeB.inboxPage(c.bobPhone, 0, 100);
    await closing;
    await turns(3);
    assert.deepEqual(
      page.messages.map((m) => m.id),
      [id],
      'the inbox the new connection drains has what the old one got live and did not acknowledge',
    );
    assert.deepEqual(c.store.inbox.pending(c.bobPhone, 0, 10).map((m) => m.id), [id], 'written once');
    assert.equal(c.pushWakes(), 1, 'one handover, one wake of the push worker');
    c.db.close();
  });

  it("a survivor releases a dead node's live link and writes its handover, once however many survivors try", async () => {
    const c = cluster();
    const [dead, survivor, other] = [c.node(), c.node(), c.node()];
    const link: Link = { key: 'A:1', deviceId: c.bobPhone, userId: c.bob };
    c.links.attach(link);
    await dead.connectionOpened(link);
    await dead.connectionLive(link);
    const id = await c.send('while-live');
    // Node A died with the link: two survivors find it in the directory at once.
    await Promise.all([survivor.releaseDeadLink(c.bobPhone, 'A:1'), other.releaseDeadLink(c.bobPhone, 'A:1')]);
    assert.deepEqual(c.store.inbox.liveDevices(), [], 'no longer live in the database');
    assert.deepEqual(c.store.inbox.pending(c.bobPhone, 0, 10).map((m) => m.id), [id], 'written once');
    assert.equal(c.pushWakes(), 1);
    await survivor.releaseDeadLink(c.bobPhone, 'A:1');
    assert.equal(c.pushWakes(), 1, 'a released link is not handed over again');
    c.db.close();
  });

  it('a new connection of a device nobody holds live hands over nothing and reads its inbox as it is', async () => {
    const c = cluster();
    const node = c.node();
    const id = await c.send('offline');
    const link: Link = { key: 'A:1', deviceId: c.bobPhone, userId: c.bob };
    c.links.attach(link);
    await node.connectionOpened(link);
    assert.deepEqual((await node.inboxPage(c.bobPhone, 0, 100)).messages.map((m) => m.id), [id]);
    assert.equal(c.pushWakes(), 0);
    c.db.close();
  });
});
