import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signUp } from '../helpers/http.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { connectAuthenticated } from '../helpers/ws.js';

/**
 * PostgreSQL lost while a node serves (issue 19, "Bad input"): a send gets the
 * retryable `unavailable`, never an ack for what did not commit; /readyz says
 * which engine is down; when PostgreSQL is back the node recovers by itself and
 * the resend (same client_msg_id) is stored once.
 */
describe('a node on PostgreSQL while PostgreSQL goes away and comes back', () => {
  let postgres: PgServer;
  let server: ServerProcess;

  before(async () => {
    postgres = await startPostgres();
    const dir = tempDir();
    const url = await postgres.freshDatabase();
    server = await startServer(['--data', `${dir}/data`, '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n')], { env: { CHATD_STORAGE_URL: url } });
  });
  after(async () => {
    await server?.stop();
    await postgres?.stop();
  });

  it('answers sends with unavailable (retryable) while it is down, and stores the resend once when it is back', { timeout: 60_000 }, async () => {
    const alice = await signUp(server.url, 'alice', 'correct horse', 'a');
    const bob = await signUp(server.url, 'bobby', 'correct horse', 'b');
    const { socket } = await connectAuthenticated(server.wsUrl, alice.token);
    const thread = await socket.expect({ type: 'direct_open', user_id: bob.userId }, 'thread');
    const threadId = thread.thread.id as number;
    const first = await socket.expect({ type: 'send', thread_id: threadId, client_msg_id: 'one', body: { text: 'before' } }, 'ack');
    assert.equal(first.seq, 1);

    await postgres.kill();
    const refused = await socket.request({ type: 'send', thread_id: threadId, client_msg_id: 'two', body: { text: 'while down' } });
    assert.equal(refused.type, 'error');
    assert.equal(refused.error.code, 'unavailable');
    assert.equal(refused.error.retryable, true);
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    const body = (await ready.json()) as { engines: { storage: { engine: string; ok: boolean } } };
    assert.deepEqual([body.engines.storage.engine, body.engines.storage.ok], ['postgres', false]);

    await postgres.start();
    // The node reconnects by itself: the resend (as a client does after `unavailable`) is stored, once, at seq 2.
    let ack: any;
    for (let attempt = 0; attempt < 50; attempt++) {
      const reply = await socket.request({ type: 'send', thread_id: threadId, client_msg_id: 'two', body: { text: 'while down' } });
      if (reply.type === 'ack') {
        ack = reply;
        break;
      }
      assert.equal(reply.error.code, 'unavailable', JSON.stringify(reply));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(ack, 'a resend is acked once PostgreSQL is back');
    assert.equal(ack.seq, 2);
    const again = await socket.expect({ type: 'send', thread_id: threadId, client_msg_id: 'two', body: { text: 'while down' } }, 'ack');
    assert.deepEqual([again.seq, again.duplicate], [2, true]);
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    socket.close();
  });
});
