import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChannelRegistry, type LiveLink } from '../../src/realtime/channels.js';
import { MemoryBroker } from '../../src/realtime/memory-broker.js';
import { MemoryDeviceLinks } from '../../src/realtime/memory-device-links.js';

/** A link whose follower records its topics. */
function link(key: string, userId: number, deviceId: number): LiveLink & { topics: Set<string>; delivered: string[] } {
  const topics = new Set<string>();
  const delivered: string[] = [];
  return {
    key,
    userId,
    deviceId,
    topics,
    delivered,
    follower: { subscribe: (topic) => topics.add(topic), unsubscribe: (topic) => topics.delete(topic) },
    deliver: (text) => delivered.push(text),
    close: () => {},
  };
}

function registry() {
  const broker = new MemoryBroker();
  const links = new MemoryDeviceLinks<LiveLink>();
  const published: Array<[string, string]> = [];
  const channels = new ChannelRegistry(broker, links, (topic, text) => published.push([topic, text]));
  broker.run({ publication: (channel, text) => channels.publication(channel, text), control: () => {} });
  return { broker, links, channels, published };
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
    assert.deepEqual([...bob.topics].sort(), ['t:2', 't:3', 't:4']);
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
    assert.deepEqual([...bob.topics].sort(), ['t:3', 't:4']);
    channels.unfollow([2], 9);
    assert.deepEqual([2, 3, 4].map((id) => broker.subscribed(`t:${id}`)), [false, true, true]);
    channels.leave(bob);
    assert.deepEqual([1, 3, 4].map((id) => broker.subscribed(`t:${id}`)), [true, false, false]);
    assert.equal(broker.subscribed('u:2'), false);
    assert.equal(broker.subscribed('d:20'), false);
    channels.leave(dave);
    assert.equal(broker.subscribed('t:1'), false);
  });

  it('goes from one thread to two and back to one and none, and from none to two and back to none, subscribed to exactly what it follows', async () => {
    // The registry holds one thread directly and a set only from two on; the shape is private, so this checks what it does.
    const { broker, links, channels } = registry();
    const bob = link('n:1', 2, 20);
    links.attach(bob);
    channels.join(bob, [1]);
    channels.follow([2], 2);
    assert.deepEqual([...bob.topics].filter((topic) => topic.startsWith('t:')).sort(), ['t:1', 't:2']);
    channels.unfollow([2], 1);
    assert.deepEqual([...bob.topics].filter((topic) => topic.startsWith('t:')), ['t:2']);
    // With one left, following it again changes nothing and unfollowing it once releases it.
    channels.follow([2], 2);
    channels.unfollow([2], 2);
    assert.deepEqual([...bob.topics].filter((topic) => topic.startsWith('t:')), []);
    assert.deepEqual([1, 2].map((id) => broker.subscribed(`t:${id}`)), [false, false]);
    channels.unfollow([2], 2);
    // None, then two at once, then none again.
    channels.follow([2], 3);
    channels.follow([2], 4);
    channels.unfollow([2], 4);
    channels.unfollow([2], 3);
    assert.deepEqual([...bob.topics].filter((topic) => topic.startsWith('t:')), []);
    assert.deepEqual([3, 4].map((id) => broker.subscribed(`t:${id}`)), [false, false]);
    // And it still follows from there: one thread, then a second.
    channels.follow([2], 5);
    channels.follow([2], 6);
    assert.deepEqual([...bob.topics].filter((topic) => topic.startsWith('t:')).sort(), ['t:5', 't:6']);
    channels.leave(bob);
    assert.deepEqual([5, 6].map((id) => broker.subscribed(`t:${id}`)), [false, false]);
  });
});

describe("ChannelRegistry: a user's channel", () => {
  it("is no transport topic: its publications go to the user's joined connections here, and only to them", async () => {
    const { broker, links, channels, published } = registry();
    const phone = link('n:1', 2, 20);
    const laptop = link('n:2', 2, 21);
    const joining = link('n:3', 2, 22);
    const carol = link('n:4', 3, 30);
    for (const each of [phone, laptop, joining, carol]) links.attach(each);
    channels.join(phone, [1]);
    channels.join(laptop, []);
    channels.join(carol, [1]);
    assert.equal(broker.subscribed('u:2'), true);
    broker.publish('u:2', 'presence');
    broker.publish('t:1', 'message');
    assert.deepEqual([phone.delivered, laptop.delivered, joining.delivered, carol.delivered], [['presence'], ['presence'], [], []]);
    assert.deepEqual(published, [['t:1', 'message']], "only the thread's publication is a transport topic's");
    assert.deepEqual([...phone.topics, ...laptop.topics], ['t:1']);
    channels.leave(phone);
    channels.leave(laptop);
    assert.equal(broker.subscribed('u:2'), false, 'nobody of the user joined here any more');
  });
});
