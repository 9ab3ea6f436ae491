import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { AttachmentHttp } from '../../src/client/attachment-http.js';
import { Attachments, bytesSource } from '../../src/client/attachments.js';
import { ClientError } from '../../src/client/errors.js';
import { portableSha256 } from '../../src/client/sha256.js';

/**
 * The SDK's tus client against a minimal tus 1.0 server in this process
 * (the real server's endpoints are tested in
 * test/integration/sdk-attachments.test.ts): the requests it makes, resuming
 * with HEAD after a connection dies mid-body (the server keeps what arrived),
 * a 409 answered by asking where the server stands, and a cancel that
 * deletes the upload.
 */
class TinyTus {
  readonly uploads = new Map<string, { length: number; bytes: Buffer; metadata: string; deleted: boolean }>();
  readonly log: string[] = [];
  /** The next PATCH is cut after this many body bytes (the socket destroyed). */
  cutNextPatchAfter: number | undefined;
  /** The next PATCH is answered 409 without reading it. */
  conflictNext = false;
  private server!: Server;
  private next = 0;

  async start(): Promise<string> {
    this.server = createServer((request, response) => void this.handle(request, response));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  stop(): void {
    this.server.closeAllConnections();
    this.server.close();
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method as string;
    this.log.push(`${method} ${request.url}`);
    assert.equal(request.headers.authorization, 'Bearer t0ken');
    const id = /^\/v1\/uploads\/(\w+)$/.exec(request.url as string)?.[1];
    const upload = id ? this.uploads.get(id) : undefined;
    const head = { 'tus-resumable': '1.0.0' };
    if (method === 'POST') {
      const newId = `u${++this.next}`;
      this.uploads.set(newId, { length: Number(request.headers['upload-length']), bytes: Buffer.alloc(0), metadata: String(request.headers['upload-metadata']), deleted: false });
      return void response.writeHead(201, { ...head, location: `/v1/uploads/${newId}`, 'upload-offset': '0' }).end();
    }
    if (!upload || upload.deleted) return void response.writeHead(404, head).end(JSON.stringify({ error: { code: 'not_found', message: 'no such upload' } }));
    if (method === 'HEAD') return void response.writeHead(200, { ...head, 'upload-offset': String(upload.bytes.length), 'upload-length': String(upload.length) }).end();
    if (method === 'DELETE') {
      upload.deleted = true;
      return void response.writeHead(204, head).end();
    }
    if (method === 'GET') {
      const sha256 = createHash('sha256').update(upload.bytes).digest('hex');
      const done = upload.bytes.length === upload.length;
      return void response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ upload: { id, offset: upload.bytes.length, length: upload.length, complete: done, attachment: done ? { id, size: upload.length, sha256 } : undefined } }));
    }
    // PATCH
    if (Number(request.headers['upload-offset']) !== upload.bytes.length || this.conflictNext) {
      this.conflictNext = false;
      request.resume();
      return void response.writeHead(409, { ...head, 'upload-offset': String(upload.bytes.length) }).end(JSON.stringify({ error: { code: 'offset_mismatch', message: 'offset' } }));
    }
    const cut = this.cutNextPatchAfter;
    this.cutNextPatchAfter = undefined;
    let received = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
      const keep = cut === undefined ? chunk : chunk.subarray(0, Math.max(0, cut - received));
      upload.bytes = Buffer.concat([upload.bytes, keep]);
      received += chunk.length;
      if (cut !== undefined && received >= cut) {
        request.socket.destroy();
        return;
      }
    }
    response.writeHead(204, { ...head, 'upload-offset': String(upload.bytes.length) }).end();
  }
}

describe('the SDK tus client', () => {
  const tus = new TinyTus();
  let attachments: Attachments;
  before(async () => {
    attachments = new Attachments(await tus.start(), 't0ken', portableSha256);
  });
  after(() => tus.stop());

  it('creates with the length and base64 metadata, PATCHes chunk by chunk, then reads the server\'s description', async () => {
    tus.log.length = 0;
    const bytes = randomBytes(10_000);
    const progress: number[] = [];
    const result = await attachments.upload(bytesSource(new Uint8Array(bytes), 'a b.txt', 'text/plain'), { chunkBytes: 4096, onProgress: (sent) => progress.push(sent) });
    assert.equal(result.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(progress, [4096, 8192, 10_000]);
    assert.deepEqual(tus.log.map((line) => line.split(' ')[0]), ['POST', 'PATCH', 'PATCH', 'PATCH', 'GET']);
    const metadata = tus.uploads.get(result.id)?.metadata ?? '';
    assert.equal(metadata, `filename ${Buffer.from('a b.txt').toString('base64')},filetype ${Buffer.from('text/plain').toString('base64')}`);
  });

  it('after a connection cut mid-body, asks where the server stands (HEAD) and sends the rest of the chunk from there', async () => {
    tus.log.length = 0;
    const bytes = randomBytes(300_000);
    tus.cutNextPatchAfter = 70_000;
    const result = await attachments.upload(bytesSource(new Uint8Array(bytes)), { chunkBytes: 100_000 });
    assert.equal(result.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(tus.log.map((line) => line.split(' ')[0]), ['POST', 'PATCH', 'HEAD', 'PATCH', 'PATCH', 'PATCH', 'GET']);
  });

  it('an encrypted upload resumes too: the chunk in flight is kept, the ciphertext is not made again', async () => {
    tus.log.length = 0;
    const plain = randomBytes(200_000);
    tus.cutNextPatchAfter = 50_001;
    const result = await attachments.upload(bytesSource(new Uint8Array(plain), 'p.bin'), { encrypt: true, chunkBytes: 100_000 });
    assert.ok(result.encrypted);
    assert.equal(result.size, plain.length);
    assert.ok(tus.log.some((line) => line.startsWith('HEAD')));
    assert.match(tus.uploads.get(result.id)?.metadata ?? '', /encrypted MQ==/);
    assert.doesNotMatch(tus.uploads.get(result.id)?.metadata ?? '', new RegExp(Buffer.from('p.bin').toString('base64')));
  });

  it('a 409 is answered by asking the server its offset', async () => {
    tus.log.length = 0;
    tus.conflictNext = true;
    const bytes = randomBytes(5000);
    const result = await attachments.upload(bytesSource(new Uint8Array(bytes)), { chunkBytes: 4096 });
    assert.equal(result.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(tus.log.slice(1, 3).map((line) => line.split(' ')[0]), ['PATCH', 'HEAD']);
  });

  it('a cancel rejects with aborted and deletes the upload on the server', async () => {
    const controller = new AbortController();
    const upload = attachments.upload(bytesSource(new Uint8Array(100_000)), { chunkBytes: 10_000, signal: controller.signal, onProgress: (sent) => sent >= 30_000 && controller.abort() });
    await assert.rejects(upload, (error: unknown) => error instanceof ClientError && error.code === 'aborted');
    const id = [...tus.uploads.keys()].at(-1) as string;
    assert.equal(tus.uploads.get(id)?.deleted, true);
  });

  it('a refusal (not found) is the server\'s error, not retried', async () => {
    const http = new AttachmentHttp('http://127.0.0.1:1', 'x');
    assert.equal(http.absolute('/v1/uploads/abc'), 'http://127.0.0.1:1/v1/uploads/abc');
    await assert.rejects(attachments.download('nope'), (error: unknown) => error instanceof ClientError && error.status === 404 && !error.retryable);
  });
});
