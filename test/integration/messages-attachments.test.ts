import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { logIn, signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { preferredTransport } from '../helpers/transports.js';
import { type Connected, connectAuthenticated } from '../helpers/ws.js';

/**
 * Messages that carry attachments, over the real server: the live event, the
 * offline inbox and history carry the server's description of the file; an id
 * the sender may not attach is refused and nothing is stored.
 *
 * TEST FIXTURE: the uploads are seeded with raw SQL into the running server's
 * SQLite file (WAL: another connection may write), as the upload endpoint
 * (/v1/uploads) would leave them, so that this test needs nothing but the
 * message path.
 */

const CONFIG = `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
`;

const SHA = 'c'.repeat(64);

function seedUploads(data: string, rows: ReadonlyArray<{ id: string; userId: number; deviceId: number; complete: boolean }>): void {
  const db = new Database(join(data, 'chatd.db'));
  db.pragma('busy_timeout = 5000');
  try {
    const insert = db.prepare(
      `INSERT INTO uploads (id, user_id, device_id, length, name, declared_type, encrypted, keep_metadata, duration_ms, created_at, expires_at,
                            completed_at, sha256, size, mime, width, height, thumb_sha256, thumb_width, thumb_height)
       VALUES (?, ?, ?, 2048, 'beach.jpg', 'image/jpeg', 0, 0, NULL, 1, 9999999999999, ?, ?, ?, ?, 1600, 1200, ?, 320, 240)`,
    );
    for (const row of rows) {
      insert.run(row.id, row.userId, row.deviceId, row.complete ? 2 : null, row.complete ? SHA : null, row.complete ? 2000 : null, row.complete ? 'image/jpeg' : null, row.complete ? 'd'.repeat(64) : null);
    }
  } finally {
    db.close();
  }
}

function stored(data: string): { messages: number; refs: number } {
  const db = new Database(join(data, 'chatd.db'), { readonly: true });
  try {
    const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { messages: count('messages'), refs: count('attachment_refs') };
  } finally {
    db.close();
  }
}

describe(`messages with attachments over the real server (${preferredTransport})`, () => {
  let server: ServerProcess;
  let data: string;
  let alice: Connected;
  let bob: Connected;
  let bobTablet: { token: string };
  let thread: number;
  const ids = { photo: 'AlicePhotoUpload000001', carols: 'CarolUploadNotShared01', unfinished: 'AliceHalfUpload0000001' };

  before(async () => {
    const dir = tempDir();
    data = join(dir, 'data');
    server = await startServer(['--data', data, '--transport', preferredTransport, '--config', writeConfig(dir, CONFIG)]);
    const a = await signUp(server.url, 'alice', 'correct horse', 'laptop');
    const b = await signUp(server.url, 'bob', 'correct horse', 'phone');
    const c = await signUp(server.url, 'carol', 'correct horse', 'laptop');
    // Bob's second device: known to the server (its inbox fills) but not connected when the message is sent.
    bobTablet = await logIn(server.url, 'bob', 'correct horse', 'tablet');
    seedUploads(data, [
      { id: ids.photo, userId: a.userId, deviceId: a.deviceId, complete: true },
      { id: ids.carols, userId: c.userId, deviceId: c.deviceId, complete: true },
      { id: ids.unfinished, userId: a.userId, deviceId: a.deviceId, complete: false },
    ]);
    alice = await connectAuthenticated(server.wsUrl, a.token);
    bob = await connectAuthenticated(server.wsUrl, b.token);
    thread = (await alice.socket.expect({ type: 'direct_open', user_id: b.userId }, 'thread')).thread.id;
  });
  after(async () => {
    alice?.socket.close();
    bob?.socket.close();
    await server?.stop();
  });

  const described = {
    id: ids.photo,
    name: 'beach.jpg',
    size: 2000,
    mime: 'image/jpeg',
    sha256: SHA,
    width: 1600,
    height: 1200,
    thumbnail: { width: 320, height: 240 },
  };

  it('a send with an attachment and no body reaches the other member live and an offline device through its inbox, with the same attachments', async () => {
    // What the client claims of the file is ignored: the server describes it from its own record.
    const ack = await alice.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'photo-1', attachments: [{ id: ids.photo, size: 1, mime: 'text/html' }] }, 'ack');
    const live = (await bob.socket.nextEvent('message')).message;
    assert.equal(live.id, ack.message_id);
    assert.equal(live.body, null);
    assert.deepEqual(live.attachments, [described]);
    const tablet = await connectAuthenticated(server.wsUrl, bobTablet.token);
    try {
      assert.deepEqual(
        tablet.inbox.map((frame) => frame.message),
        [live],
      );
    } finally {
      tablet.socket.close();
    }
    const history = await bob.socket.expect({ type: 'history', thread_id: thread }, 'messages');
    assert.deepEqual(history.messages, [live]);
    const threads = await bob.socket.expect({ type: 'threads' }, 'threads');
    assert.deepEqual(threads.threads[0].last_message, live);
    // A resend is the same ack and stores no second reference.
    const again = await alice.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'photo-1', attachments: [{ id: ids.photo }] }, 'ack');
    assert.equal(again.duplicate, true);
    assert.deepEqual(stored(data), { messages: 1, refs: 1 });
  });

  it('refuses an id the sender cannot attach — another user\'s upload not visible to them, a made-up id, an incomplete upload — with attachment_not_found, storing nothing', async () => {
    const before = stored(data);
    for (const id of [ids.carols, 'MadeUpIdNobodyUploaded', ids.unfinished]) {
      const reply = await alice.socket.request({ type: 'send', thread_id: thread, client_msg_id: `bad-${id}`, body: { text: 'see this' }, attachments: [{ id: ids.photo }, { id }] });
      assert.equal(reply.type, 'error', JSON.stringify(reply));
      assert.equal(reply.error.code, 'attachment_not_found');
      assert.equal(reply.error.field, 'attachments');
      assert.match(reply.error.message, new RegExp(`attachment ${id} `));
    }
    assert.deepEqual(stored(data), before);
  });

  it('refuses a malformed attachments list as invalid_frame naming the field', async () => {
    const reply = await alice.socket.request({ type: 'send', thread_id: thread, client_msg_id: 'dup', attachments: [{ id: ids.photo }, { id: ids.photo }] });
    assert.equal(reply.type, 'error');
    assert.equal(reply.error.code, 'invalid_frame');
    assert.equal(reply.error.field, 'attachments');
    assert.match(reply.error.message, /attachments\[1\] repeats id/);
  });
});
