import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { logIn, signUp } from '../helpers/http.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { preferredTransport } from '../helpers/transports.js';
import { type Connected, connectAuthenticated } from '../helpers/ws.js';

/**
 * Messages that carry attachments, over the real server: the live event, the
 * offline inbox and history carry the server's description of the file; an id
 * the sender may not attach is refused and nothing is stored.
 *
 * On SQLite and on PostgreSQL (storage.url).
 *
 * TEST FIXTURE: the uploads are seeded with raw SQL into the running server's
 * database (its SQLite file — WAL: another connection may write — or its
 * PostgreSQL database), as the upload endpoint (/v1/uploads) would leave
 * them, so that this test needs nothing but the message path.
 */

const CONFIG = `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
`;

const SHA = 'c'.repeat(64);

interface SeedRow {
  readonly id: string;
  readonly userId: number;
  readonly deviceId: number;
  readonly complete: boolean;
}

const SEED_COLUMNS = `id, user_id, device_id, length, name, declared_type, encrypted, keep_metadata, duration_ms, created_at, expires_at,
  completed_at, sha256, size, mime, width, height, thumb_sha256, thumb_width, thumb_height`;

/** The upload row's values after its id, user and device: a 1600×1200 JPEG with a thumbnail, or incomplete. */
function seedValues(row: SeedRow): unknown[] {
  const done = <T>(value: T): T | null => (row.complete ? value : null);
  return [row.id, row.userId, row.deviceId, done(2), done(SHA), done(2000), done('image/jpeg'), done('d'.repeat(64))];
}

/** A running server on one engine, and raw SQL into its database. */
interface Engine {
  readonly name: string;
  start(): Promise<{ server: ServerProcess; seed(rows: readonly SeedRow[]): Promise<void>; stored(): Promise<{ messages: number; refs: number }> }>;
  stop(): Promise<void>;
}

const sqlite: Engine = {
  name: 'SQLite',
  async start() {
    const dir = tempDir();
    const data = join(dir, 'data');
    const server = await startServer(['--data', data, '--transport', preferredTransport, '--config', writeConfig(dir, CONFIG)]);
    const open = (readonly: boolean) => {
      const db = new Database(join(data, 'chatd.db'), { readonly });
      db.pragma('busy_timeout = 5000');
      return db;
    };
    return {
      server,
      async seed(rows) {
        const db = open(false);
        try {
          const insert = db.prepare(`INSERT INTO uploads (${SEED_COLUMNS}) VALUES (?, ?, ?, 2048, 'beach.jpg', 'image/jpeg', 0, 0, NULL, 1, 9999999999999, ?, ?, ?, ?, 1600, 1200, ?, 320, 240)`);
          for (const row of rows) insert.run(...seedValues(row));
        } finally {
          db.close();
        }
      },
      async stored() {
        const db = open(true);
        try {
          const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
          return { messages: count('messages'), refs: count('attachment_refs') };
        } finally {
          db.close();
        }
      },
    };
  },
  async stop() {},
};

let postgresServer: PgServer | undefined;
const postgres: Engine = {
  name: 'PostgreSQL',
  async start() {
    postgresServer = await startPostgres();
    const url = await postgresServer.freshDatabase();
    const dir = tempDir();
    const server = await startServer(['--data', join(dir, 'data'), '--transport', preferredTransport, '--config', writeConfig(dir, CONFIG)], { env: { CHATD_STORAGE_URL: url } });
    const query = async (text: string, values: unknown[] = []) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return await client.query(text, values);
      } finally {
        await client.end();
      }
    };
    return {
      server,
      async seed(rows) {
        for (const row of rows) {
          await query(`INSERT INTO uploads (${SEED_COLUMNS}) VALUES ($1, $2, $3, 2048, 'beach.jpg', 'image/jpeg', false, false, NULL, 1, 9999999999999, $4, $5, $6, $7, 1600, 1200, $8, 320, 240)`, seedValues(row));
        }
      },
      async stored() {
        const { rows } = await query('SELECT (SELECT count(*) FROM messages)::int AS messages, (SELECT count(*) FROM attachment_refs)::int AS refs');
        return { messages: rows[0].messages, refs: rows[0].refs };
      },
    };
  },
  async stop() {
    await postgresServer?.stop();
  },
};

for (const engine of [sqlite, postgres]) {
describe(`messages with attachments over the real server on ${engine.name} (${preferredTransport})`, () => {
  let server: ServerProcess;
  let db: Awaited<ReturnType<Engine['start']>>;
  let alice: Connected;
  let bob: Connected;
  let bobTablet: { token: string };
  let thread: number;
  const ids = { photo: 'AlicePhotoUpload000001', carols: 'CarolUploadNotShared01', unfinished: 'AliceHalfUpload0000001' };

  before(async () => {
    db = await engine.start();
    server = db.server;
    const a = await signUp(server.url, 'alice', 'correct horse', 'laptop');
    const b = await signUp(server.url, 'bob', 'correct horse', 'phone');
    const c = await signUp(server.url, 'carol', 'correct horse', 'laptop');
    // Bob's second device: known to the server (its inbox fills) but not connected when the message is sent.
    bobTablet = await logIn(server.url, 'bob', 'correct horse', 'tablet');
    await db.seed([
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
    await engine.stop();
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

  it('a send with an attachment and no body reaches the other member live and an offline device through its inbox, with the same attachments (and history, jump, sync, thread list)', async () => {
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
    const jumped = await bob.socket.expect({ type: 'jump', message_id: live.id }, 'messages');
    assert.deepEqual(jumped.messages, [live]);
    const synced = await bob.socket.expect({ type: 'sync', cursors: [{ thread_id: thread, seq: 0 }] }, 'sync');
    assert.deepEqual(synced.threads[0].messages, [live]);
    // A resend is the same ack and stores no second reference.
    const again = await alice.socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'photo-1', attachments: [{ id: ids.photo }] }, 'ack');
    assert.equal(again.duplicate, true);
    assert.deepEqual(await db.stored(), { messages: 1, refs: 1 });
  });

  it('refuses an id the sender cannot attach — another user\'s upload not visible to them, a made-up id, an incomplete upload — with attachment_not_found, storing nothing', async () => {
    const before = await db.stored();
    for (const id of [ids.carols, 'MadeUpIdNobodyUploaded', ids.unfinished]) {
      const reply = await alice.socket.request({ type: 'send', thread_id: thread, client_msg_id: `bad-${id}`, body: { text: 'see this' }, attachments: [{ id: ids.photo }, { id }] });
      assert.equal(reply.type, 'error', JSON.stringify(reply));
      assert.equal(reply.error.code, 'attachment_not_found');
      assert.equal(reply.error.field, 'attachments');
      assert.match(reply.error.message, new RegExp(`attachment ${id} `));
    }
    assert.deepEqual(await db.stored(), before);
  });

  it('refuses a malformed attachments list as invalid_frame naming the field', async () => {
    const reply = await alice.socket.request({ type: 'send', thread_id: thread, client_msg_id: 'dup', attachments: [{ id: ids.photo }, { id: ids.photo }] });
    assert.equal(reply.type, 'error');
    assert.equal(reply.error.code, 'invalid_frame');
    assert.equal(reply.error.field, 'attachments');
    assert.match(reply.error.message, /attachments\[1\] repeats id/);
  });
});
}
