import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { logIn, signUp } from '../helpers/http.js';
import { startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { connectAuthenticated } from '../helpers/ws.js';

/**
 * A `delivered` cursor is a lazy write (it commits with the next send, or
 * alone a moment later without an fsync of its own: docs/protocol.md,
 * `delivered`); a `read` is flushed to disk before its answer. Both are
 * committed before they are answered, so a crash of the process loses
 * neither: after kill -9 the author still sees one message read and the
 * other delivered, and the receiver's next connection does not get them again.
 */
describe('delivered and read cursors under kill -9', () => {
  it('are kept once answered, though no send committed after them', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const args = ['--data', join(dir, 'data'), '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n[storage]\nsynchronous = "full"\n')];
    let server = await startServer(args);
    const alice = await signUp(server.url, 'alice', 'correct horse');
    const bob = await signUp(server.url, 'bob', 'correct horse');
    const a = (await connectAuthenticated(server.wsUrl, alice.token)).socket;
    const b = (await connectAuthenticated(server.wsUrl, bob.token)).socket;
    const threadId = (await a.expect({ type: 'direct_open', user_id: bob.userId }, 'thread')).thread.id;
    for (const text of ['one', 'two']) await a.expect({ type: 'send', thread_id: threadId, client_msg_id: text, body: { text } }, 'ack');
    await b.nextEvent((frame) => frame.type === 'message' && frame.message.seq === 2);
    // The last writes before the kill: nothing durable follows them.
    assert.equal((await b.expect({ type: 'read', thread_id: threadId, seq: 1 }, 'read_state')).read_seq, 1);
    assert.equal((await b.expect({ type: 'delivered', thread_id: threadId, seq: 2 }, 'delivered')).seq, 2);
    assert.equal(await server.stop('SIGKILL'), null);

    server = await startServer(args);
    const again = await connectAuthenticated(server.wsUrl, (await logIn(server.url, 'alice', 'correct horse')).token);
    const first = await again.socket.expect({ type: 'receipts', thread_id: threadId, seq: 1 }, 'receipts');
    assert.deepEqual([first.read, first.pending], [[bob.userId], []], 'bob has read message 1, as his answered read said');
    const info = await again.socket.expect({ type: 'receipts', thread_id: threadId, seq: 2 }, 'receipts');
    assert.deepEqual([info.delivered, info.pending], [[bob.userId], []], 'bob has message 2, as his answered ack said');
    const bobAgain = await connectAuthenticated(server.wsUrl, bob.token);
    assert.deepEqual(bobAgain.inbox, [], 'nothing comes to bob a second time');
    again.socket.close();
    bobAgain.socket.close();
    await server.stop();
  });
});
