import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import * as tus from 'tus-js-client';
import { avifWithLocation, undecodableHeic } from '../helpers/heif.js';
import { signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type Transport, preferredTransport, transports } from '../helpers/transports.js';

/**
 * Uploads over the real server (built: npx tsc -p tsconfig.build.json):
 * the tus endpoint's answers, resuming after a cut, deduplication on disk,
 * the limits, and tus-js-client (the reference client library) end to end.
 * Allowed types are "image/*, application/octet-stream": random bytes are
 * accepted, a PDF or text is refused. http.max_body_bytes stays at its
 * default (64 KiB): PATCH bodies of a MiB pass because they are streamed.
 */

const MAX_FILE = 2 * 1024 * 1024;
const QUOTA = 4 * 1024 * 1024;
const PER_MINUTE = 10;
const TUS = { 'tus-resumable': '1.0.0' };

let server: ServerProcess;
let data: string;
let users = 0;

/** Starts the server of a describe block (one per transport and engine; blocks run one after the other). `storageUrl`: PostgreSQL's. */
async function start(transport: Transport, storageUrl?: string): Promise<void> {
  const dir = tempDir();
  data = join(dir, 'data');
  const env = storageUrl ? { env: { CHATD_STORAGE_URL: storageUrl } } : {};
  server = await startServer(['--data', data, '--transport', transport, '--config', writeConfig(dir, `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[attachments]
max_file_bytes = ${MAX_FILE}
user_quota_bytes = ${QUOTA}
allowed_types = "image/*, application/octet-stream"
uploads_per_minute = ${PER_MINUTE}
`)], env);
}

/** A new user's token: each test has its own quota and rate. */
async function user(): Promise<string> {
  return (await signUp(server.url, `user${++users}`)).token;
}

function auth(token: string): Record<string, string> {
  return { ...TUS, authorization: `Bearer ${token}` };
}

async function create(token: string, length: number, metadata = ''): Promise<Response> {
  return fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...auth(token), 'upload-length': String(length), ...(metadata ? { 'upload-metadata': metadata } : {}) } });
}

async function created(token: string, length: number): Promise<string> {
  const response = await create(token, length);
  assert.equal(response.status, 201, await response.text());
  const location = response.headers.get('location') ?? '';
  assert.match(location, /^\/v1\/uploads\/[A-Za-z0-9_-]{22}$/);
  return location;
}

function patch(token: string, location: string, offset: number, bytes: Uint8Array): Promise<Response> {
  return fetch(`${server.url}${location}`, {
    method: 'PATCH',
    headers: { ...auth(token), 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) },
    body: bytes,
  });
}

async function head(token: string, location: string): Promise<Response> {
  return fetch(`${server.url}${location}`, { method: 'HEAD', headers: auth(token) });
}

async function describeUpload(token: string, location: string): Promise<any> {
  const response = await fetch(`${server.url}${location}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200);
  return ((await response.json()) as { upload: unknown }).upload;
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Random bytes that sniff as nothing in particular (application/octet-stream). */
function file(size: number): Buffer {
  const bytes = randomBytes(size);
  bytes[0] = 0;
  return bytes;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name));
}

/** Sends a PATCH's head and part of its body over a raw socket, then cuts the connection. */
async function cutPatch(token: string, location: string, offset: number, body: Uint8Array, sendBytes: number): Promise<void> {
  const socket = connect(server.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const headLines = [
    `PATCH ${location} HTTP/1.1`,
    `host: 127.0.0.1:${server.port}`,
    `authorization: Bearer ${token}`,
    'tus-resumable: 1.0.0',
    'content-type: application/offset+octet-stream',
    `upload-offset: ${offset}`,
    `content-length: ${body.length}`,
  ];
  await new Promise((resolve) => socket.write(`${headLines.join('\r\n')}\r\n\r\n`, resolve));
  await new Promise((resolve) => socket.write(body.subarray(0, sendBytes), resolve));
  socket.destroy();
  await new Promise((resolve) => socket.once('close', resolve));
}

/** What a tus client does after a drop: HEAD for the offset, PATCH the rest; a 409 says where to resume. */
async function resume(token: string, location: string, bytes: Uint8Array): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const answer = await head(token, location);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('upload-length'), String(bytes.length));
    let offset = Number(answer.headers.get('upload-offset'));
    for (;;) {
      const response = await patch(token, location, offset, bytes.subarray(offset));
      if (response.status === 204) return assert.equal(response.headers.get('upload-offset'), String(bytes.length));
      assert.equal(response.status, 409, await response.text());
      offset = Number(response.headers.get('upload-offset'));
    }
  }
}

for (const transport of transports('uploads (tus 1.0)')) {
  describe(`uploads (tus 1.0) on the ${transport} transport`, () => {
    before(() => start(transport));
    after(() => server?.stop());
    uploadCases(transport);
  });
}

// The same on PostgreSQL: the blobs are under the data directory there too.
describe('uploads (tus 1.0) on PostgreSQL', { timeout: 300_000 }, () => {
  let postgres: PgServer | undefined;
  before(async () => {
    postgres = await startPostgres();
    await start(preferredTransport, await postgres.freshDatabase());
  });
  after(async () => {
    await server?.stop();
    await postgres?.stop();
  });
  uploadCases(preferredTransport);
});

function uploadCases(transport: Transport): void {
  it('answers OPTIONS with the tus version, extensions and largest size', async () => {
    const response = await fetch(`${server.url}/v1/uploads`, { method: 'OPTIONS' });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('tus-resumable'), '1.0.0');
    assert.equal(response.headers.get('tus-version'), '1.0.0');
    assert.equal(response.headers.get('tus-extension'), 'creation,creation-with-upload,termination,expiration');
    assert.equal(response.headers.get('tus-max-size'), String(MAX_FILE));
  });

  it('resumes an upload cut in the middle of a PATCH, and reports the SHA-256 of the file', async () => {
    const token = await user();
    const bytes = file(1024 * 1024 + 17);
    const location = await created(token, bytes.length);
    const first = await patch(token, location, 0, bytes.subarray(0, 100_000));
    assert.equal(first.status, 204);
    assert.equal(first.headers.get('upload-offset'), '100000');
    assert.match(first.headers.get('upload-expires') ?? '', /GMT$/);
    await cutPatch(token, location, 100_000, bytes.subarray(100_000), 300_000);
    await resume(token, location, bytes);
    const upload = await describeUpload(token, location);
    assert.equal(upload.complete, true);
    assert.equal(upload.offset, bytes.length);
    assert.deepEqual(upload.attachment, { id: upload.id, name: '', size: bytes.length, mime: 'application/octet-stream', sha256: sha256(bytes) });
    assert.equal(existsSync(join(data, 'blobs', 'sha256', sha256(bytes).slice(0, 2), sha256(bytes))), true);
  });

  it(
    'keeps the bytes of a PATCH that arrived before its connection was cut',
    async () => {
      const token = await user();
      const bytes = file(500_000);
      const location = await created(token, bytes.length);
      await cutPatch(token, location, 0, bytes, 300_000);
      // The server's offset moves past 0 once it has read what arrived: wait for that (bounded), then check it.
      const deadline = Date.now() + 10_000;
      let held = 0;
      while (held === 0 && Date.now() < deadline) held = Number((await head(token, location)).headers.get('upload-offset'));
      assert.ok(held > 0 && held <= 300_000, `held ${held}`);
      await resume(token, location, bytes);
      assert.equal((await describeUpload(token, location)).attachment.sha256, sha256(bytes));
    },
  );

  it('stores the same content once for two uploads', async () => {
    const token = await user();
    const bytes = file(200_000);
    const blobsBefore = filesUnder(join(data, 'blobs', 'sha256')).length;
    const locations = [await created(token, bytes.length), await created(token, bytes.length)];
    for (const location of locations) assert.equal((await patch(token, location, 0, bytes)).status, 204);
    const [a, b] = await Promise.all(locations.map((location) => describeUpload(token, location)));
    assert.notEqual(a.id, b.id);
    assert.equal(a.attachment.sha256, sha256(bytes));
    assert.equal(b.attachment.sha256, sha256(bytes));
    const blobs = filesUnder(join(data, 'blobs', 'sha256'));
    assert.equal(blobs.length, blobsBefore + 1);
    assert.equal(blobs.filter((path) => path.endsWith(sha256(bytes))).length, 1);
  });

  it('refuses a file over max_file_bytes with 413 file_too_large', async () => {
    const response = await create(await user(), MAX_FILE + 1);
    assert.equal(response.status, 413);
    assert.equal(response.headers.get('tus-resumable'), '1.0.0');
    assert.equal((await errorOf(response)).code, 'file_too_large');
  });

  it('refuses an upload past the quota with 413 quota_exceeded, storing nothing', async () => {
    const token = await user();
    await created(token, MAX_FILE);
    await created(token, MAX_FILE);
    const staged = filesUnder(join(data, 'blobs', 'staging')).length;
    const response = await create(token, 1);
    assert.equal(response.status, 413);
    assert.equal(response.headers.get('location'), null);
    const error = await errorOf(response);
    assert.equal(error.code, 'quota_exceeded');
    assert.match(error.message, new RegExp(`${QUOTA} of ${QUOTA} bytes`));
    assert.equal(filesUnder(join(data, 'blobs', 'staging')).length, staged);
  });

  it('deletes an upload whose content is of a type not allowed: 415, then 404', async () => {
    const token = await user();
    const pdf = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
    const location = await created(token, pdf.length);
    const response = await patch(token, location, 0, pdf);
    assert.equal(response.status, 415);
    const error = await errorOf(response);
    assert.equal(error.code, 'type_not_allowed');
    assert.match(error.message, /application\/pdf/);
    assert.equal((await head(token, location)).status, 404);
    const id = location.split('/').pop() as string;
    assert.equal(existsSync(join(data, 'blobs', 'staging', id)), false);
    assert.equal(filesUnder(join(data, 'blobs', 'sha256')).some((path) => path.endsWith(sha256(pdf))), false);
  });

  it('answers 429 rate_limited with Retry-After past uploads_per_minute', async () => {
    const token = await user();
    for (let i = 0; i < PER_MINUTE; i++) assert.equal((await create(token, 1)).status, 201);
    const response = await create(token, 1);
    assert.equal(response.status, 429);
    assert.equal((await errorOf(response)).code, 'rate_limited');
    assert.ok(Number(response.headers.get('retry-after')) >= 1);
  });

  it('answers a PATCH at the wrong offset with 409 offset_mismatch and the offset it holds', async () => {
    const token = await user();
    const location = await created(token, 10);
    const response = await patch(token, location, 5, file(5));
    assert.equal(response.status, 409);
    assert.equal(response.headers.get('upload-offset'), '0');
    assert.equal((await errorOf(response)).code, 'offset_mismatch');
  });

  it("answers another user's HEAD, PATCH, GET and DELETE with 404", async () => {
    const owner = await user();
    const other = await user();
    const location = await created(owner, 10);
    assert.equal((await head(other, location)).status, 404);
    const patched = await patch(other, location, 0, file(10));
    assert.equal(patched.status, 404);
    assert.equal((await errorOf(patched)).code, 'not_found');
    assert.equal((await fetch(`${server.url}${location}`, { headers: { authorization: `Bearer ${other}` } })).status, 404);
    assert.equal((await fetch(`${server.url}${location}`, { method: 'DELETE', headers: auth(other) })).status, 404);
    assert.equal(Number((await head(owner, location)).headers.get('upload-offset')), 0, 'untouched');
  });

  it('refuses a request without Tus-Resumable with 412, and Upload-Defer-Length with 400', async () => {
    const token = await user();
    const bare = await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'upload-length': '5' } });
    assert.equal(bare.status, 412);
    assert.equal(bare.headers.get('tus-version'), '1.0.0');
    const deferred = await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...auth(token), 'upload-defer-length': '1' } });
    assert.equal(deferred.status, 400);
    assert.equal((await errorOf(deferred)).code, 'invalid_upload');
  });

  it('creates with the first bytes in the POST (creation-with-upload), and terminates with DELETE', async () => {
    const token = await user();
    const bytes = file(1000);
    const response = await fetch(`${server.url}/v1/uploads`, {
      method: 'POST',
      headers: { ...auth(token), 'upload-length': '2000', 'content-type': 'application/offset+octet-stream', 'upload-metadata': `filename ${Buffer.from('../notes.bin').toString('base64')}` },
      body: bytes,
    });
    assert.equal(response.status, 201);
    assert.equal(response.headers.get('upload-offset'), '1000');
    const location = response.headers.get('location') as string;
    const upload = await describeUpload(token, location);
    assert.deepEqual({ offset: upload.offset, length: upload.length, complete: upload.complete }, { offset: 1000, length: 2000, complete: false });
    assert.equal((await fetch(`${server.url}${location}`, { method: 'DELETE', headers: auth(token) })).status, 204);
    assert.equal((await head(token, location)).status, 404);
    assert.equal(existsSync(join(data, 'blobs', 'staging', location.split('/').pop() as string)), false);
  });

  it('stores a photo without its EXIF data unless asked to keep it, with its size and a thumbnail', async () => {
    const token = await user();
    const photo = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#336699' } })
      .jpeg()
      .withExif({ IFD0: { Copyright: 'where I live', ImageDescription: 'GPS 48.8584 2.2945' } })
      .toBuffer();
    assert.ok(photo.includes('where I live'));
    const described = [];
    for (const keep of [false, true]) {
      const metadata = keep ? `keep_metadata ${Buffer.from('1').toString('base64')}` : '';
      const response = await create(token, photo.length, metadata);
      const location = response.headers.get('location') as string;
      assert.equal((await patch(token, location, 0, photo)).status, 204);
      described.push((await describeUpload(token, location)).attachment);
    }
    const [stripped, kept] = described;
    assert.deepEqual([stripped.mime, stripped.width, stripped.height], ['image/jpeg', 64, 48]);
    assert.ok(stripped.thumbnail.width <= 320 && stripped.thumbnail.width > 0);
    assert.notEqual(stripped.sha256, sha256(photo), 'the stored copy is the rewrite');
    const stored = await fetch(`${server.url}/v1/attachments/${stripped.id}`, { headers: { authorization: `Bearer ${token}` } });
    const served = Buffer.from(await stored.arrayBuffer());
    assert.equal(sha256(served), stripped.sha256);
    assert.equal(served.length, stripped.size);
    assert.equal(served.includes('where I live'), false, 'no EXIF text in what others download');
    assert.equal(kept.sha256, sha256(photo), 'kept as sent');
  });

  it('stores a JPEG sharp cannot read (its last bytes missing) without its EXIF all the same, as a file', async () => {
    const token = await user();
    const whole = await sharp(randomBytes(200 * 150 * 3), { raw: { width: 200, height: 150, channels: 3 } })
      .jpeg()
      .withExif({ IFD0: { ImageDescription: 'where I live' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100' } })
      .toBuffer();
    const photo = whole.subarray(0, whole.length - 400);
    assert.ok(photo.includes('where I live'));
    const location = (await create(token, photo.length, '')).headers.get('location') as string;
    assert.equal((await patch(token, location, 0, photo)).status, 204);
    const stripped = (await describeUpload(token, location)).attachment;
    assert.deepEqual([stripped.mime, stripped.width ?? null, stripped.thumbnail ?? null], ['image/jpeg', null, null]);
    const served = Buffer.from(await (await fetch(`${server.url}/v1/attachments/${stripped.id}`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer());
    assert.deepEqual([sha256(served), served.length], [stripped.sha256, stripped.size]);
    assert.equal(served.includes('where I live') || served.includes('Exif\0\0'), false, 'no EXIF in what others download');
    assert.deepEqual(served.subarray(-5000), photo.subarray(-5000), 'the picture data as sent');
  });

  it('stores a HEIC photo sharp cannot decode with its EXIF and XMP zeroed, same length, unless asked to keep them', async () => {
    const token = await user();
    // An iPhone-like HEIC for the prebuilt sharp (no HEVC decoder): undecodable, its location in Exif and XMP items.
    const photo = undecodableHeic(await avifWithLocation(64, 48));
    assert.ok(photo.includes('HeifTestCam') && photo.includes('GPSLatitude'));
    const described = [];
    for (const keep of [false, true]) {
      const metadata = keep ? `keep_metadata ${Buffer.from('1').toString('base64')}` : '';
      const location = (await create(token, photo.length, metadata)).headers.get('location') as string;
      assert.equal((await patch(token, location, 0, photo)).status, 204);
      described.push((await describeUpload(token, location)).attachment);
    }
    const [stripped, kept] = described;
    assert.deepEqual([stripped.mime, stripped.size, stripped.width ?? null, stripped.thumbnail ?? null], ['image/heic', photo.length, null, null]);
    const served = Buffer.from(await (await fetch(`${server.url}/v1/attachments/${stripped.id}`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer());
    assert.equal(sha256(served), stripped.sha256);
    assert.equal(served.length, photo.length, 'same length: every offset in the file still holds');
    assert.equal(served.includes('HeifTestCam') || served.includes('GPSLatitude'), false, 'no EXIF or XMP in what others download');
    assert.equal(kept.sha256, sha256(photo), 'kept as sent');
  });

  it('takes a file from tus-js-client, which resumes it by its uploadUrl after an abort', async () => {
    const token = await user();
    const bytes = file(600_000);
    const options = {
      endpoint: `${server.url}/v1/uploads`,
      headers: { authorization: `Bearer ${token}` },
      chunkSize: 64 * 1024,
      metadata: { filename: 'random.bin', filetype: 'application/octet-stream' },
      storeFingerprintForResuming: false,
      retryDelays: [],
    };
    let url = '';
    await new Promise<void>((resolve, reject) => {
      const upload = new tus.Upload(bytes, {
        ...options,
        onChunkComplete: (_chunk, sent) => {
          if (sent < 200_000) return;
          url = upload.url ?? '';
          void upload.abort().then(resolve, reject);
        },
        onError: reject,
        onSuccess: () => reject(new Error('the upload should have been aborted first')),
      });
      upload.start();
    });
    assert.match(url, /\/v1\/uploads\/[A-Za-z0-9_-]{22}$/);
    const location = new URL(url).pathname;
    const before = Number((await head(token, location)).headers.get('upload-offset'));
    assert.ok(before >= 200_000 && before < bytes.length, `resumed from ${before}`);
    await new Promise<void>((resolve, reject) => {
      new tus.Upload(bytes, { ...options, uploadUrl: url, onError: reject, onSuccess: () => resolve() }).start();
    });
    const upload = await describeUpload(token, location);
    assert.equal(upload.attachment.sha256, sha256(bytes));
    assert.equal(upload.attachment.name, 'random.bin');
  });
}

describe('uploads switched off', () => {
  it('answers /v1/uploads with 404 when attachments.enabled is false', async () => {
    const dir = tempDir();
    const off = await startServer(['--data', join(dir, 'data'), '--transport', preferredTransport, '--config', writeConfig(dir, '[attachments]\nenabled = false\n')]);
    try {
      const response = await fetch(`${off.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, 'upload-length': '1' } });
      assert.equal(response.status, 404);
      assert.equal((await errorOf(response)).code, 'not_found');
    } finally {
      await off.stop();
    }
  });
});
