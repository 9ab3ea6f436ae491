import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import sharp from 'sharp';
import { signLink } from '../../src/services/attachments/links.js';
import { request, signUp } from '../helpers/http.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { GPS_EXIF, bombPng, noiseImage } from '../helpers/images.js';
import { type Transport, preferredTransport, transports } from '../helpers/transports.js';
import { type Connected, connectAuthenticated } from '../helpers/ws.js';

/**
 * Downloads over the real server (docs/attachments.md, "Downloading"): who
 * may read an attachment (the uploader; members who can see a message that
 * carries it (dave); a removed member (bob) only what was sent before the removal), ranges,
 * signed links, and an image stored without its location data. Uploads go
 * through tus, messages through the WebSocket, as a client's do.
 */

const CONFIG = `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[attachments]
link_ttl_seconds = 60
thumbnail_pixels = 64
`;

interface Attachment {
  readonly id: string;
  readonly size: number;
  readonly mime: string;
  readonly sha256: string;
  readonly width?: number;
  readonly height?: number;
  readonly thumbnail?: { width: number; height: number };
}

const tusMetadata = (entries: Record<string, string>) =>
  Object.entries(entries)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');

/** One tus creation-with-upload request carrying the whole file, then the server's description of it. */
async function upload(baseUrl: string, token: string, bytes: Uint8Array, name: string, extra: Record<string, string> = {}): Promise<Attachment> {
  const created = await fetch(`${baseUrl}/v1/uploads`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'tus-resumable': '1.0.0',
      'upload-length': String(bytes.length),
      'upload-metadata': tusMetadata({ filename: name, ...extra }),
      'content-type': 'application/offset+octet-stream',
    },
    body: bytes,
  });
  assert.equal(created.status, 201, await created.clone().text());
  assert.equal(created.headers.get('upload-offset'), String(bytes.length));
  const location = created.headers.get('location') as string;
  const described = await request(`${baseUrl}${location}`, { token, headers: { 'tus-resumable': '1.0.0' } });
  assert.equal(described.status, 200);
  assert.equal(described.body.upload.complete, true);
  return described.body.upload.attachment as Attachment;
}

async function download(url: string, options: { token?: string; headers?: Record<string, string>; method?: string } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(url, { headers, method: options.method ?? 'GET' });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body, json: () => JSON.parse(body.toString()) as { error: { code: string } } };
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Where the suite runs: SQLite on each transport, and PostgreSQL (canRead and the link secret are the engine's). */
interface Deployment {
  readonly name: string;
  readonly transport: Transport;
  /** Environment that picks the engine (none: SQLite in --data). */
  env(): Promise<Record<string, string>>;
  /** The link secret as the server stored it (server_secrets), to sign a link with a time already past. */
  secret(data: string): Promise<Buffer>;
  stop(): Promise<void>;
}

const SECRET_QUERY = "SELECT value FROM server_secrets WHERE name = 'attachment_links'";

function sqliteDeployment(transport: Transport): Deployment {
  return {
    name: `SQLite, ${transport}`,
    transport,
    env: async () => ({}),
    secret: async (data) => {
      const db = new Database(join(data, 'chatd.db'), { readonly: true, fileMustExist: true });
      try {
        return (db.prepare(SECRET_QUERY).get() as { value: Buffer }).value;
      } finally {
        db.close();
      }
    },
    stop: async () => {},
  };
}

function postgresDeployment(): Deployment {
  let postgres: PgServer | undefined;
  let url = '';
  return {
    name: `PostgreSQL, ${preferredTransport}`,
    transport: preferredTransport,
    env: async () => {
      postgres = await startPostgres();
      url = await postgres.freshDatabase();
      return { CHATD_STORAGE_URL: url };
    },
    secret: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return ((await client.query(SECRET_QUERY)).rows[0] as { value: Buffer }).value;
      } finally {
        await client.end();
      }
    },
    stop: async () => postgres?.stop(),
  };
}

for (const deployment of [...transports('attachment downloads').map(sqliteDeployment), postgresDeployment()]) {
  describe(`attachment downloads (${deployment.name})`, { timeout: 300_000 }, () => {
    let server: ServerProcess;
    let data: string;
    let alice: { token: string; userId: number };
    let bob: { token: string; userId: number };
    let carol: { token: string; userId: number };
    let dave: { token: string; userId: number };
    let aliceSocket: Connected;
    let group: number;
    const file = randomBytes(10_000);
    let early: Attachment; // sent while bob was a member
    let afterRemoval: Attachment; // sent after bob was removed
    let photo: Attachment;
    let unsent: Attachment;
    let sent = 0;

    async function send(threadId: number, attachments: Attachment[]): Promise<void> {
      await aliceSocket.socket.expect(
        { type: 'send', thread_id: threadId, client_msg_id: `m${++sent}`, body: { text: 'see attached' }, attachments: attachments.map(({ id }) => ({ id })) },
        'ack',
      );
    }

    before(async () => {
      const dir = tempDir();
      data = join(dir, 'data');
      server = await startServer(['--data', data, '--transport', deployment.transport, '--config', writeConfig(dir, CONFIG)], {
        env: await deployment.env(),
      });
      alice = await signUp(server.url, 'alice');
      bob = await signUp(server.url, 'bob');
      carol = await signUp(server.url, 'carol');
      dave = await signUp(server.url, 'dave');
      aliceSocket = await connectAuthenticated(server.wsUrl, alice.token);
      group = (await aliceSocket.socket.expect({ type: 'group_create', title: 'files', members: ['bob', 'dave'] }, 'thread')).thread.id;

      early = await upload(server.url, alice.token, file, 'data.bin');
      const jpeg = await noiseImage(200, 100).jpeg().withExif(GPS_EXIF).toBuffer();
      photo = await upload(server.url, alice.token, jpeg, 'holiday.jpg');
      await send(group, [early, photo]);
      await aliceSocket.socket.expect({ type: 'group_remove', thread_id: group, user_id: bob.userId }, 'ok');
      afterRemoval = await upload(server.url, alice.token, randomBytes(3000), 'later.bin');
      await send(group, [afterRemoval]);
      unsent = await upload(server.url, bob.token, randomBytes(500), 'mine.bin');
    });

    after(async () => {
      aliceSocket?.socket.close();
      await server?.stop();
      await deployment.stop();
    });

    it('serves the uploader and a member the bytes, with the content headers', async () => {
      for (const token of [alice.token, dave.token]) {
        const response = await download(`${server.url}/v1/attachments/${early.id}`, { token });
        assert.equal(response.status, 200);
        assert.deepEqual(response.body, file);
        assert.equal(response.headers.get('content-length'), '10000');
        assert.equal(response.headers.get('etag'), `"${sha256(file)}"`);
        assert.equal(response.headers.get('accept-ranges'), 'bytes');
        assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
        assert.equal(response.headers.get('content-security-policy'), "sandbox; default-src 'none'");
        assert.equal(response.headers.get('content-type'), 'application/octet-stream');
        assert.equal(response.headers.get('content-disposition'), `attachment; filename="data.bin"; filename*=UTF-8''data.bin`);
      }
      assert.equal(early.sha256, sha256(file));
    });

    it('answers a non-member, a guessed id and an upload nobody sent with 404, and no token with 401', async () => {
      const refused = [
        [early.id, carol.token],
        [photo.id, carol.token],
        ['AAAAAAAAAAAAAAAAAAAAAA', alice.token],
        [unsent.id, alice.token],
      ] as const;
      for (const [id, token] of refused) {
        const response = await download(`${server.url}/v1/attachments/${id}`, { token });
        assert.equal(response.status, 404, id);
        assert.equal(response.json().error.code, 'not_found');
      }
      assert.equal((await download(`${server.url}/v1/attachments/${unsent.id}`, { token: bob.token })).status, 200, 'the uploader reads their own');
      assert.equal((await download(`${server.url}/v1/attachments/${early.id}`)).status, 401);
    });

    it('leaves a removed member what was sent before the removal, and nothing after', async () => {
      const kept = await download(`${server.url}/v1/attachments/${early.id}`, { token: bob.token });
      assert.equal(kept.status, 200);
      assert.deepEqual(kept.body, file);
      assert.equal((await download(`${server.url}/v1/attachments/${photo.id}/thumbnail`, { token: bob.token })).status, 200);
      const later = await download(`${server.url}/v1/attachments/${afterRemoval.id}`, { token: bob.token });
      assert.equal(later.status, 404);
    });

    it('serves ranges: the first 100, the last 100, the middle, open-ended, and 416 past the end', async () => {
      const url = `${server.url}/v1/attachments/${early.id}`;
      const cases: [string, number, number][] = [
        ['bytes=0-99', 0, 99],
        ['bytes=-100', 9900, 9999],
        ['bytes=4000-5999', 4000, 5999],
        ['bytes=9000-', 9000, 9999],
      ];
      for (const [range, start, end] of cases) {
        const response = await download(url, { token: alice.token, headers: { range } });
        assert.equal(response.status, 206, range);
        assert.equal(response.headers.get('content-range'), `bytes ${start}-${end}/10000`, range);
        assert.equal(response.headers.get('content-length'), String(end - start + 1), range);
        assert.deepEqual(response.body, file.subarray(start, end + 1), range);
      }
      const past = await download(url, { token: alice.token, headers: { range: 'bytes=10000-' } });
      assert.equal(past.status, 416);
      assert.equal(past.headers.get('content-range'), 'bytes */10000');
      assert.equal(past.json().error.code, 'range_not_satisfiable');
      const head = await download(url, { token: alice.token, method: 'HEAD', headers: { range: 'bytes=0-99' } });
      assert.equal(head.status, 206);
      assert.equal(head.headers.get('content-length'), '100');
      assert.equal(head.body.length, 0);
    });

    it('answers If-None-Match with the ETag by 304', async () => {
      const response = await download(`${server.url}/v1/attachments/${early.id}`, { token: alice.token, headers: { 'if-none-match': `"${early.sha256}"` } });
      assert.equal(response.status, 304);
      assert.equal(response.body.length, 0);
    });

    it('stores and serves the photo without its GPS data, with a WebP thumbnail', async () => {
      assert.equal(photo.mime, 'image/jpeg');
      assert.deepEqual([photo.width, photo.height], [200, 100]);
      assert.deepEqual(photo.thumbnail, { width: 64, height: 32 });
      const served = await download(`${server.url}/v1/attachments/${photo.id}`, { token: alice.token });
      assert.equal(served.headers.get('content-disposition'), `inline; filename="holiday.jpg"; filename*=UTF-8''holiday.jpg`);
      assert.equal(sha256(served.body), photo.sha256, 'the hash is of the bytes served');
      assert.equal((await sharp(served.body).metadata()).exif, undefined, 'no EXIF, so no location');
      const thumbnail = await download(`${server.url}/v1/attachments/${photo.id}/thumbnail`, { token: alice.token });
      assert.equal(thumbnail.headers.get('content-type'), 'image/webp');
      const metadata = await sharp(thumbnail.body).metadata();
      assert.deepEqual([metadata.format, metadata.width, metadata.height], ['webp', 64, 32]);
    });

    it('stores a truncated image and a decompression bomb as plain files, and stays up', async () => {
      const whole = await noiseImage(300, 200).jpeg().toBuffer();
      const hostile: [Buffer, string][] = [
        [whole.subarray(0, whole.length / 2), 'image/jpeg'],
        [bombPng(20_000, 20_000), 'image/png'],
        [Buffer.concat([whole.subarray(0, 8), randomBytes(4000)]), 'image/jpeg'],
      ];
      for (const [bytes, mime] of hostile) {
        const stored = await upload(server.url, alice.token, bytes, 'hostile');
        assert.equal(stored.mime, mime);
        assert.equal(stored.sha256, sha256(bytes), 'stored as it came');
        assert.equal(stored.width, undefined);
        assert.equal(stored.thumbnail, undefined);
        const served = await download(`${server.url}/v1/attachments/${stored.id}`, { token: alice.token });
        assert.deepEqual(served.body, bytes);
        assert.equal((await download(`${server.url}/v1/attachments/${stored.id}/thumbnail`, { token: alice.token })).status, 404);
      }
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    });

    it('makes signed links that work without a token, and refuses expired and edited ones', async () => {
      const made = await request(`${server.url}/v1/attachments/${photo.id}/links`, { method: 'POST', token: bob.token });
      assert.equal(made.status, 200);
      const { url, thumbnail_url: thumbnailUrl, expires_at: expiresAt } = made.body as { url: string; thumbnail_url: string; expires_at: number };
      assert.ok(expiresAt > Date.now() && expiresAt <= Date.now() + 61_000, 'link_ttl_seconds from the config');
      const viaLink = await download(`${server.url}${url}`);
      assert.equal(viaLink.status, 200);
      assert.equal(sha256(viaLink.body), photo.sha256);
      assert.equal((await download(`${server.url}${thumbnailUrl}`)).status, 200);
      const ranged = await download(`${server.url}${url}`, { headers: { range: 'bytes=0-9' } });
      assert.equal(ranged.status, 206);

      const sig = new URL(url, server.url).searchParams.get('sig') as string;
      const tampered = url.replace(sig, (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
      const bad = await download(`${server.url}${tampered}`);
      assert.equal(bad.status, 403);
      assert.equal(bad.json().error.code, 'link_invalid');

      // Expiry without waiting: a link signed with the server's own secret for a time already past.
      const secret = await deployment.secret(data);
      const past = Math.floor(Date.now() / 1000) - 1;
      const expired = await download(`${server.url}/v1/attachments/${photo.id}?exp=${past}&sig=${signLink(secret, photo.id, 'file', past)}`);
      assert.equal(expired.status, 403);
      assert.equal(expired.json().error.code, 'link_expired');
      const future = Math.floor(Date.now() / 1000) + 30;
      const genuine = await download(`${server.url}/v1/attachments/${photo.id}?exp=${future}&sig=${signLink(secret, photo.id, 'file', future)}`);
      assert.equal(genuine.status, 200, 'the same secret with a time to come: the check above failed for the time alone');
    });

    it('gives links only to those who may read', async () => {
      const refused = await request(`${server.url}/v1/attachments/${photo.id}/links`, { method: 'POST', token: carol.token });
      assert.equal(refused.status, 404);
      const later = await request(`${server.url}/v1/attachments/${afterRemoval.id}/links`, { method: 'POST', token: bob.token });
      assert.equal(later.status, 404);
    });
  });
}
