import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChannelRegistry, type LiveLink } from '../../src/realtime/channels.js';
import { MemoryBroker } from '../../src/realtime/memory-broker.js';
import { MemoryDeviceLinks } from '../../src/realtime/memory-device-links.js';

/** A link whose follower records its topics. */
function link(key: string, userId: number, deviceId: number): LiveLink & { topics: Set<string> } {
  const topics = new Set<string>();
  return {
    key,
    userId,
    deviceId,
    topics,
    follower: { subscribe: (topic) => topics.add(topic), unsubscribe: (topic) => topics.delete(topic) },
    deliver: () => {},
    close: () => {},
  };
}

function registry() {
  const broker = new MemoryBroker();
  const links = new MemoryDeviceLinks<LiveLink>();
  return { broker, links, channels: new ChannelRegistry(broker, links, () => {}) };
}

describe('ChannelRegistry: membership changes before a connection joins', () => {
  it("applies them, in order, after join's snapshot: a removed member does not follow, an added one does, the latest change wins", async () => {
    const { broker, links, channels } = registry();
    const bob = link('n:1', 2, 20);
    links.attach(bob);
    // Join's thread list (the inbox's last page) was read before these changes.
    channels.unfollow([2], 1);
    channels.follow([2], 3);
    channels.unfollow([2], 4);
    channels.follow([2], 4);
    channels.follow([2], 5);
    channels.unfollow([2], 5);
    channels.join(bob, [1, 2]);
    assert.deepEqual([...bob.topics].sort(), ['t:2', 't:3', 't:4', 'u:2']);
    assert.deepEqual([1, 2, 3, 4, 5].map((id) => broker.subscribed(`t:${id}`)), [false, true, true, true, false]);
    // Once joined, a change acts at once, and nothing recorded earlier comes back.
    channels.unfollow([2], 3);
    assert.equal(bob.topics.has('t:3'), false);
    assert.equal(broker.subscribed('t:3'), false);
  });

  it('touches only connections of those users, and drops what it recorded for a connection that leaves before it joins', async () => {
    const { broker, links, channels } = registry();
    const bob = link('n:1', 2, 20);
    const carol = link('n:2', 3, 30);
    links.attach(bob);
    links.attach(carol);
    channels.follow([2], 7);
    channels.join(carol, []);
    assert.equal(carol.topics.has('t:7'), false, "not carol's change");
    channels.leave(bob);
    // Were the change still recorded, a join of that link would act on it.
    channels.join(bob, []);
    assert.equal(bob.topics.has('t:7'), false, 'dropped at leave');
    assert.equal(broker.subscribed('t:7'), false);
  });
});

describe('ChannelRegistry: the threads a joined connection follows', () => {
  it('holds none, one or several threads alike: each followed once, unfollowed once, and all of them released when it leaves', async () => {
    const { broker, links, channels } = registry();
    const bob = link('n:1', 2, 20);
    const dave = link('n:2', 4, 40);
    links.attach(bob);
    links.attach(dave);
    channels.join(bob, [1]);
    channels.join(dave, [1]);
    // One thread, followed again: still one subscription, and dave keeps the node's.
    channels.follow([2], 1);
    channels.unfollow([2], 1);
    assert.equal(bob.topics.has('t:1'), false);
    assert.equal(broker.subscribed('t:1'), true, 'dave still follows it');
    channels.unfollow([2], 1);
    // None, then one, then two, then back to one and to two.
    channels.follow([2], 2);
    channels.follow([2], 3);
    channels.follow([2], 3);
    channels.unfollow([2], 2);
    channels.follow([2], 4);
    assert.deepEqual([...bob.topics].sort(), ['t:3', 't:4', 'u:2']);
    channels.unfollow([2], 9);
    assert.deepEqual([2, 3, 4].map((id) => broker.subscribed(`t:${id}`)), [false, true, true]);
    channels.leave(bob);
    assert.deepEqual([1, 3, 4].map((id) => broker.subscribed(`t:${id}`)), [true, false, false]);
    assert.equal(broker.subscribed('u:2'), false);
    assert.equal(broker.subscribed('d:20'), false);
    channels.leave(dave);
    assert.equal(broker.subscribed('t:1'), false);
  });
});
