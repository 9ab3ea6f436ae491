import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Cluster, startCluster } from '../helpers/cluster.js';
import { signUp } from '../helpers/http.js';
import { preferredTransport } from '../helpers/transports.js';
import { connectAuthenticated } from '../helpers/ws.js';

/**
 * The message that makes someone a member (group_created, members_added)
 * reaches their live devices on every node at once: it travels with the
 * membership change, which every node hears, not only on the thread's channel,
 * which another node subscribes to only after hearing of the change. Without
 * it a member on another node would see a new group at its next message (by
 * gap fill) or at the next sync.
 */
describe(`cluster: a new member's devices on another node get the message that made them members, live (${preferredTransport})`, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster({ nodes: 2, transport: preferredTransport, config: '[accounts]\nregistration = "open"\n' });
  });
  after(() => cluster?.stop());

  it('group_created and members_added arrive live on the other node, once', { timeout: 30_000 }, async () => {
    const alice = await signUp(cluster.url(0), 'alice', 'correct horse', 'a');
    const bob = await signUp(cluster.url(1), 'bobby', 'correct horse', 'b');
    const carol = await signUp(cluster.url(1), 'carol', 'correct horse', 'c');
    const onA = await connectAuthenticated(cluster.wsUrl(0), alice.token);
    const bobOnB = await connectAuthenticated(cluster.wsUrl(1), bob.token);
    const carolOnB = await connectAuthenticated(cluster.wsUrl(1), carol.token);

    const created = await onA.socket.expect({ type: 'group_create', title: 'friends', members: [bob.userId] }, 'thread');
    const threadId = created.thread.id as number;
    const first = await bobOnB.socket.nextEvent('message');
    assert.equal(first.message.thread_id, threadId);
    assert.equal(first.message.seq, 1);
    assert.equal(first.message.body.event, 'group_created');

    await onA.socket.expect({ type: 'group_add', thread_id: threadId, members: [carol.userId] }, 'thread');
    const added = await carolOnB.socket.nextEvent('message');
    assert.equal(added.message.thread_id, threadId);
    assert.equal(added.message.seq, 2);
    assert.equal(added.message.body.event, 'members_added');

    // Bob, a member already, gets members_added on the thread, and once: a message after it comes next.
    await onA.socket.expect({ type: 'send', thread_id: threadId, client_msg_id: 'hello', body: { text: 'hello' } }, 'ack');
    const seen: number[] = [];
    for (;;) {
      const event = await bobOnB.socket.nextEvent('message');
      seen.push(event.message.seq as number);
      if (event.message.seq === 3) break;
    }
    assert.deepEqual(seen, [2, 3]);
    for (const connected of [onA, bobOnB, carolOnB]) connected.socket.close();
  });
});
