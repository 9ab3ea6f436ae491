import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AccountApi, ChatClient, type ClientMessage } from '../../src/client/node.js';
import { ClientEvents } from '../helpers/client-events.js';
import { type Cluster, startCluster } from '../helpers/cluster.js';
import { preferredTransport } from '../helpers/transports.js';

/**
 * Attachments on two nodes sharing one blobs volume (docs/scaling.md): a file
 * uploaded through one node, carried by a message sent there, is served by the
 * other node to the recipient, by token and by a link the first node signed;
 * and the same content uploaded through the other node is stored once.
 */
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe(`cluster: attachments on a shared blobs volume (${preferredTransport})`, { timeout: 60_000 }, () => {
  let cluster: Cluster;
  const clients: ChatClient[] = [];

  before(async () => {
    cluster = await startCluster({ nodes: 2, transport: preferredTransport, sharedBlobs: true, config: '[accounts]\nregistration = "open"\n' });
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await cluster?.stop();
  });

  async function device(node: number, username: string): Promise<ClientEvents> {
    const api = new AccountApi(cluster.url(node));
    await api.register({ username, password: 'correct horse' }).catch(() => undefined);
    const login = await api.login({ username, password: 'correct horse', device_name: 'cluster attachments', platform: 'bot' });
    const client = new ChatClient({ server: cluster.url(node), token: login.token });
    clients.push(client);
    const events = new ClientEvents(client);
    await client.start();
    await client.whenOnline();
    return events;
  }

  it('uploaded and sent on one node, downloaded on the other; the same content through the other node is stored once', async () => {
    const alice = await device(0, 'alice');
    const bob = await device(1, 'bobby');
    const thread = await alice.client.openDirect('bobby');
    const bytes = new Uint8Array(randomBytes(3 * 1024 * 1024 + 7));
    const attachment = await alice.client.upload(bytes, { name: 'shared.bin', chunkBytes: 1024 * 1024 });
    await alice.client.send(thread.id, { text: 'from node 0' }, { attachments: [attachment] });

    const received = await bob.until(
      () => bob.messages.find((m: ClientMessage) => m.thread_id === thread.id && (m.attachments?.length ?? 0) > 0),
      'the message with its attachment on node 1',
    );
    const [got] = received.attachments ?? [];
    assert.equal(got?.sha256, sha256(bytes));
    assert.deepEqual(await bob.client.download(got!), bytes, 'node 1 serves what node 0 stored');

    // A link signed by node 0 works on node 1: the key is in the database every node shares.
    const links = await alice.client.attachmentLinks(attachment.id);
    const onOtherNode = new URL(new URL(links.url).pathname + new URL(links.url).search, cluster.url(1));
    const response = await fetch(onOtherNode);
    assert.equal(response.status, 200);
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes);

    // Bob sends the same bytes back through node 1: a second upload, one stored content.
    const again = await bob.client.upload(bytes, { name: 'again.bin' });
    assert.notEqual(again.id, attachment.id);
    assert.equal(again.sha256, attachment.sha256);
    const stored = readdirSync(join(cluster.blobsDir!, 'sha256'), { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
    assert.deepEqual(
      stored.map((entry) => entry.name),
      [attachment.sha256],
      'one file on the shared volume for the two uploads',
    );
  });
});
