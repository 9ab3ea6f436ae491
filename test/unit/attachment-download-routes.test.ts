import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import pino from 'pino';
import { ChatError } from '../../src/errors.js';
import { AttachmentDownloads, type BlobReader } from '../../src/services/attachments/downloads.js';
import { signLink } from '../../src/services/attachments/links.js';
import type { Principal } from '../../src/services/types.js';
import type { AttachmentStorage, UploadRow } from '../../src/storage/ports/attachments.js';
import { addAttachmentRoutes } from '../../src/transport/http/attachments.js';
import { Router } from '../../src/transport/http/router.js';

/**
 * The download routes over a Router with an in-memory attachment table and
 * blob map: the HTTP rules (access answers, ranges, headers, links) without a
 * server. test/integration/attachments-download.test.ts runs them over the
 * real server and storage engines.
 */

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function world() {
  const file = randomBytes(1000);
  const thumb = randomBytes(50);
  const blobs = new Map([
    [sha(file), file],
    [sha(thumb), thumb],
  ]);
  const row = (id: string, name: string, mime: string, bytes: Uint8Array, thumbnail: boolean): UploadRow => ({
    id,
    userId: 1,
    deviceId: 1,
    length: bytes.length,
    name,
    declaredType: mime,
    encrypted: false,
    keepMetadata: false,
    durationMs: null,
    createdAt: 0,
    expiresAt: 0,
    completedAt: 1,
    blob: { sha256: sha(bytes), size: bytes.length, mime, width: null, height: null, thumbnail: thumbnail ? { sha256: sha(thumb), width: 5, height: 5 } : null },
  });
  const html = Buffer.from('<script>alert(1)</script>');
  blobs.set(sha(html), html);
  const uploads = new Map<string, UploadRow>([
    ['photo', row('photo', 'Grüße "x".jpg', 'image/jpeg', file, true)],
    ['page', row('page', 'page.html', 'text/plain', html, false)],
    ['half', { ...row('half', 'half.bin', 'application/octet-stream', file, false), completedAt: null, blob: null }],
  ]);
  // User 1 reads everything, user 2 nothing.
  const readers = new Set([1]);
  const calls: string[] = [];
  let secretsMade = 0;
  const secret = randomBytes(32);
  const attachments: Pick<AttachmentStorage, 'upload' | 'canRead' | 'secret'> = {
    upload: async (id) => {
      calls.push(`upload ${id}`);
      return uploads.get(id);
    },
    canRead: async (userId, id) => {
      calls.push(`canRead ${userId} ${id}`);
      return readers.has(userId) && uploads.has(id);
    },
    secret: async () => {
      secretsMade++;
      return secret;
    },
  };
  const reads = { opened: 0, closed: 0 };
  const store: BlobReader = {
    blobSize: async (hash) => blobs.get(hash)?.length,
    async *readBlob(hash, range) {
      const bytes = blobs.get(hash);
      if (!bytes) throw new Error('not found');
      reads.opened++;
      try {
        const slice = range ? bytes.subarray(range.start, range.end + 1) : bytes;
        for (let i = 0; i < slice.length; i += 300) yield slice.subarray(i, i + 300);
      } finally {
        reads.closed++;
      }
    },
  };
  let now = 1_800_000_000_000;
  const downloads = new AttachmentDownloads({ attachments, blobs: store, now: () => now, linkTtlSeconds: 300 });
  const router = new Router(pino({ level: 'silent' }), false);
  const authenticate = async (request: Request): Promise<Principal> => {
    const token = /^Bearer (\d+)$/.exec(request.headers.get('authorization') ?? '')?.[1];
    if (!token) throw new ChatError('unauthorized', 'no token');
    return { user: { id: Number(token) }, deviceId: 1 } as unknown as Principal;
  };
  addAttachmentRoutes(router, { authenticate, downloads });
  const request = (path: string, init: RequestInit & { user?: number } = {}) => {
    const headers = new Headers(init.headers);
    if (init.user !== undefined) headers.set('authorization', `Bearer ${init.user}`);
    return router.handle(new Request(`http://chat.test${path}`, { ...init, headers }), { remoteAddress: '127.0.0.1' });
  };
  return { file, thumb, html, secret, calls, reads, request, setNow: (ms: number) => (now = ms), secretsMade: () => secretsMade };
}

async function bytesOf(response: Response): Promise<Buffer> {
  return Buffer.from(await response.arrayBuffer());
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

describe('attachment download routes', () => {
  it('serve the file to a reader with every content header', async () => {
    const w = world();
    const response = await w.request('/v1/attachments/photo', { user: 1 });
    assert.equal(response.status, 200);
    assert.deepEqual(await bytesOf(response), w.file);
    const h = response.headers;
    assert.equal(h.get('content-length'), '1000');
    assert.equal(h.get('content-type'), 'image/jpeg');
    assert.equal(h.get('accept-ranges'), 'bytes');
    assert.equal(h.get('etag'), `"${sha(w.file)}"`);
    assert.equal(h.get('cache-control'), 'private, max-age=31536000, immutable');
    assert.equal(h.get('x-content-type-options'), 'nosniff');
    assert.equal(h.get('content-security-policy'), "sandbox; default-src 'none'");
    assert.equal(h.get('content-disposition'), `inline; filename="Gr__e _x_.jpg"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22x%22.jpg`);
  });

  it('serve text (HTML included) as a download, never inline', async () => {
    const w = world();
    const response = await w.request('/v1/attachments/page', { user: 1 });
    assert.equal(response.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.match(response.headers.get('content-disposition') ?? '', /^attachment; /);
    assert.deepEqual(await bytesOf(response), w.html);
  });

  it('answer an unknown id, an unfinished upload and a non-reader alike: 404 not_found', async () => {
    const w = world();
    for (const [path, user] of [
      ['/v1/attachments/guessed', 1],
      ['/v1/attachments/half', 1],
      ['/v1/attachments/photo', 2],
      ['/v1/attachments/photo/thumbnail', 2],
      ['/v1/attachments/page/thumbnail', 1],
    ] as const) {
      const response = await w.request(path, { user });
      assert.equal(response.status, 404, path);
      assert.equal(await errorCode(response), 'not_found');
    }
    assert.deepEqual(w.calls.slice(0, 1), ['canRead 1 guessed'], 'an unknown id costs what a refused one does: one canRead');
    assert.ok(!w.calls.includes('upload photo'), 'a non-reader never gets as far as the row');
  });

  it('ask for a token when there is neither a token nor a link', async () => {
    const response = await world().request('/v1/attachments/photo');
    assert.equal(response.status, 401);
  });

  it('serve ranges: first, last, middle, open-ended, and 416 past the end', async () => {
    const w = world();
    const expect = async (range: string, start: number, end: number) => {
      const response = await w.request('/v1/attachments/photo', { user: 1, headers: { range } });
      assert.equal(response.status, 206, range);
      assert.equal(response.headers.get('content-range'), `bytes ${start}-${end}/1000`);
      assert.equal(response.headers.get('content-length'), String(end - start + 1));
      assert.deepEqual(await bytesOf(response), w.file.subarray(start, end + 1), range);
    };
    await expect('bytes=0-99', 0, 99);
    await expect('bytes=-100', 900, 999);
    await expect('bytes=250-749', 250, 749);
    await expect('bytes=600-', 600, 999);
    const past = await w.request('/v1/attachments/photo', { user: 1, headers: { range: 'bytes=1000-' } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), 'bytes */1000');
    assert.equal(past.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(await errorCode(past), 'range_not_satisfiable');
    const several = await w.request('/v1/attachments/photo', { user: 1, headers: { range: 'bytes=0-1,5-6' } });
    assert.equal(several.status, 200);
    assert.equal((await bytesOf(several)).length, 1000);
  });

  it('honour If-Range only with the current ETag, and If-None-Match with 304', async () => {
    const w = world();
    const etag = `"${sha(w.file)}"`;
    const same = await w.request('/v1/attachments/photo', { user: 1, headers: { range: 'bytes=0-9', 'if-range': etag } });
    assert.equal(same.status, 206);
    const other = await w.request('/v1/attachments/photo', { user: 1, headers: { range: 'bytes=0-9', 'if-range': '"old"' } });
    assert.equal(other.status, 200);
    const cached = await w.request('/v1/attachments/photo', { user: 1, headers: { 'if-none-match': etag } });
    assert.equal(cached.status, 304);
    assert.equal(cached.headers.get('etag'), etag);
    assert.equal((await bytesOf(cached)).length, 0);
  });

  it('serve the thumbnail as inline WebP with its own ETag', async () => {
    const w = world();
    const response = await w.request('/v1/attachments/photo/thumbnail', { user: 1 });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'image/webp');
    assert.equal(response.headers.get('content-disposition'), 'inline');
    assert.equal(response.headers.get('etag'), `"${sha(w.thumb)}"`);
    assert.deepEqual(await bytesOf(response), w.thumb);
  });

  it('make links a browser can use without a token, which expire, and refuse edited ones', async () => {
    const w = world();
    const made = await w.request('/v1/attachments/photo/links', { method: 'POST', user: 1 });
    assert.equal(made.status, 200);
    const links = (await made.json()) as { url: string; thumbnail_url: string; expires_at: number };
    assert.equal(links.expires_at, 1_800_000_300_000);
    assert.match(links.url, /^\/v1\/attachments\/photo\?exp=1800000300&sig=[A-Za-z0-9_-]{43}$/);
    assert.match(links.thumbnail_url, /^\/v1\/attachments\/photo\/thumbnail\?exp=1800000300&sig=/);
    assert.deepEqual(await bytesOf(await w.request(links.url)), w.file);
    assert.deepEqual(await bytesOf(await w.request(links.thumbnail_url)), w.thumb);
    const ranged = await w.request(links.url, { headers: { range: 'bytes=-10' } });
    assert.deepEqual(await bytesOf(ranged), w.file.subarray(990));

    const swapped = links.url.replace('/photo?', '/page?');
    assert.equal(await errorCode(await w.request(swapped)), 'link_invalid');
    const variant = links.thumbnail_url.replace('/thumbnail?', '?');
    assert.equal(await errorCode(await w.request(variant)), 'link_invalid');
    const later = links.url.replace('exp=1800000300', 'exp=1800000900');
    assert.equal(await errorCode(await w.request(later)), 'link_invalid');
    const bare = await w.request('/v1/attachments/photo?exp=1800000300', { user: 1 });
    assert.equal(bare.status, 403, 'a token does not make a broken link good');
    assert.equal(await errorCode(bare), 'link_invalid');

    w.setNow(1_800_000_300_000);
    const expired = await w.request(links.url);
    assert.equal(expired.status, 403);
    assert.equal(await errorCode(expired), 'link_expired');
    assert.equal(w.secretsMade(), 1, 'the secret is read from storage once');
  });

  it('a link made with an explicit past time is expired; one for a missing upload is 404', async () => {
    const w = world();
    const exp = 1_800_000_000 - 1;
    const old = await w.request(`/v1/attachments/photo?exp=${exp}&sig=${signLink(w.secret, 'photo', 'file', exp)}`);
    assert.equal(await errorCode(old), 'link_expired');
    const future = 1_800_000_100;
    const gone = await w.request(`/v1/attachments/gone?exp=${future}&sig=${signLink(w.secret, 'gone', 'file', future)}`);
    assert.equal(gone.status, 404);
  });

  it('give links only to a reader, and no thumbnail link when there is no thumbnail', async () => {
    const w = world();
    assert.equal((await w.request('/v1/attachments/photo/links', { method: 'POST', user: 2 })).status, 404);
    assert.equal((await w.request('/v1/attachments/half/links', { method: 'POST', user: 1 })).status, 404);
    const page = (await (await w.request('/v1/attachments/page/links', { method: 'POST', user: 1 })).json()) as { thumbnail_url: unknown };
    assert.equal(page.thumbnail_url, null);
  });

  it('answer HEAD with the headers and a body nobody has to read (nothing is opened)', async () => {
    const w = world();
    const response = await w.request('/v1/attachments/photo', { method: 'HEAD', user: 1, headers: { range: 'bytes=0-9' } });
    assert.equal(response.status, 206);
    assert.equal(response.headers.get('content-length'), '10');
    await response.body?.cancel();
    assert.deepEqual(w.reads, { opened: 0, closed: 0 });
  });

  it('read the blob one chunk per pull, and close it when the client goes away mid-body', async () => {
    const w = world();
    const response = await w.request('/v1/attachments/photo', { user: 1 });
    assert.deepEqual(w.reads, { opened: 0, closed: 0 }, 'nothing opened before the transport reads');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    assert.equal(first.value?.length, 300);
    assert.deepEqual(w.reads, { opened: 1, closed: 0 });
    await reader.cancel();
    assert.deepEqual(w.reads, { opened: 1, closed: 1 }, 'the abort closed the blob');
  });
});
