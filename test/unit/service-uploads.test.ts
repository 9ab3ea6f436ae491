import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ChatError } from '../../src/errors.js';
import { fileName, parseUploadMetadataHeader, readUploadMetadata } from '../../src/services/attachments/upload-metadata.js';
import { type UploadMedia, UploadService, type UploadSettings } from '../../src/services/attachments/uploads.js';
import { isUploadId, newUploadId } from '../../src/services/attachments/ids.js';
import { MemoryRateLimitStore } from '../../src/services/limits/memory-rate-limit-store.js';
import type { Principal } from '../../src/services/types.js';
import { BlobStoreError, type BlobStore } from '../../src/storage/blobs/blob-store.js';
import type { AttachmentStorage, CompletedBlob, NewUpload, UploadRow } from '../../src/storage/ports/attachments.js';
import { FakeClock } from '../helpers/fake-clock.js';

/**
 * The upload rules with the service's own seams filled by small stand-ins
 * (TEMPORARY: an in-memory AttachmentStorage and BlobStore of just what the
 * service calls, until att-storage's and att-blobs' memory implementations are
 * on main; the engines' behaviour is their contract suites' business).
 */

class StandInAttachments implements Pick<AttachmentStorage, 'createUpload' | 'upload' | 'completeUpload' | 'deleteUpload' | 'usedBytes'> {
  readonly rows = new Map<string, UploadRow>();
  referenced = new Set<string>();
  async createUpload(input: NewUpload, quotaBytes: number) {
    const usedBytes = await this.usedBytes(input.userId, input.now);
    if (usedBytes + input.length > quotaBytes) return { kind: 'over_quota' as const, usedBytes };
    const { now, ...rest } = input;
    this.rows.set(input.id, { ...rest, createdAt: now, completedAt: null, blob: null });
    return { kind: 'created' as const };
  }
  async upload(id: string) {
    return this.rows.get(id);
  }
  async completeUpload(id: string, blob: CompletedBlob, now: number) {
    const row = this.rows.get(id);
    if (!row) return false;
    this.rows.set(id, { ...row, completedAt: now, blob });
    return true;
  }
  async deleteUpload(id: string) {
    if (this.referenced.has(id)) return 'referenced' as const;
    return this.rows.delete(id) ? ('deleted' as const) : ('missing' as const);
  }
  async usedBytes(userId: number, now: number) {
    let used = 0;
    for (const row of this.rows.values()) if (row.userId === userId && (row.completedAt !== null || row.expiresAt > now)) used += row.length;
    return used;
  }
}

class StandInBlobs implements Partial<BlobStore> {
  readonly staged = new Map<string, Buffer>();
  readonly blobs = new Map<string, Buffer>();
  async createStaged(id: string) {
    if (!this.staged.has(id)) this.staged.set(id, Buffer.alloc(0));
  }
  async stagedSize(id: string) {
    return this.staged.get(id)?.length;
  }
  async appendStaged(id: string, offset: number, chunks: AsyncIterable<Uint8Array>, maxBytes: number) {
    if (this.staged.get(id)?.length !== offset) throw new BlobStoreError('offset_mismatch', 'offset');
    for await (const chunk of chunks) {
      const held = this.staged.get(id) as Buffer;
      const room = maxBytes - held.length;
      this.staged.set(id, Buffer.concat([held, Buffer.from(chunk).subarray(0, room)]));
      if (chunk.byteLength > room) throw new BlobStoreError('too_long', 'too long');
    }
    return (this.staged.get(id) as Buffer).length;
  }
  async *readStaged(id: string, range?: { start: number; end: number }) {
    const held = this.staged.get(id) as Buffer;
    yield range ? held.subarray(range.start, range.end + 1) : held;
  }
  async commitStaged(id: string, sha256: string) {
    const created = !this.blobs.has(sha256);
    if (created) this.blobs.set(sha256, this.staged.get(id) as Buffer);
    this.staged.delete(id);
    return { created };
  }
  async deleteStaged(id: string) {
    this.staged.delete(id);
  }
  async putBlob(bytes: Uint8Array) {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    this.blobs.set(sha256, Buffer.from(bytes));
    return { sha256, size: bytes.byteLength };
  }
}

/** PNG and PDF by their magic numbers; a "PNG" whose 9th byte is 1 has metadata to strip. */
const media: UploadMedia = {
  sniffBytes: 16,
  sniff: (bytes) => (bytes[0] === 0x89 && bytes[1] === 0x50 ? 'image/png' : bytes[0] === 0x25 ? 'application/pdf' : 'application/octet-stream'),
  typeAllowed: (mime, allowed) => allowed === '*' || allowed.split(',').some((rule) => mime.startsWith(rule.trim().replace('*', ''))),
  processImage: async (mime, read, options) => {
    if (mime !== 'image/png') return undefined;
    const parts: Uint8Array[] = [];
    for await (const chunk of read()) parts.push(chunk);
    const bytes = Buffer.concat(parts);
    return {
      width: 4,
      height: 3,
      thumbnail: { bytes: Buffer.from('thumb'), width: 2, height: 1 },
      ...(bytes[8] === 1 && !options.keepMetadata ? { rewritten: Buffer.concat([bytes.subarray(0, 8), Buffer.from([0])]) } : {}),
    };
  },
};

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1]);

const alice = { user: { id: 1 }, deviceId: 11 } as unknown as Principal;
const bob = { user: { id: 2 }, deviceId: 21 } as unknown as Principal;

function world(overrides: Partial<UploadSettings> = {}) {
  const clock = new FakeClock();
  const storage = new StandInAttachments();
  const blobs = new StandInBlobs();
  const settings: UploadSettings = {
    maxFileBytes: 1000,
    quotaBytes: 2000,
    allowedTypes: '*',
    allowEncrypted: true,
    uploadsPerMinute: 100,
    expiryMs: 3_600_000,
    ...overrides,
  };
  const service = new UploadService({
    storage: storage as unknown as AttachmentStorage,
    blobs: blobs as unknown as BlobStore,
    clock,
    limits: new MemoryRateLimitStore(clock),
    media,
    settings,
  });
  return { clock, storage, blobs, service };
}

const plain = { name: 'a.bin', declaredType: '', encrypted: false, keepMetadata: false, durationMs: null };

function body(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<ChatError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof ChatError, String(error));
  assert.equal(error.code, code, error.message);
  return error;
}

describe('UploadService', () => {
  it('appends in pieces, refuses a wrong offset with the right one, and finishes with the hash of the bytes', async () => {
    const { service, blobs } = world();
    const file = Buffer.from('%PDF-1.7 hello world');
    const upload = await service.create(alice, file.length, plain);
    assert.ok(isUploadId(upload.id));
    assert.deepEqual(await service.append(alice, upload.id, 0, body(file.subarray(0, 5))), { offset: 5, length: file.length, expiresAt: upload.expiresAt });
    const mismatch = await rejectsWith(service.append(alice, upload.id, 4, body(file.subarray(4))), 'offset_mismatch');
    assert.equal(mismatch.details?.offset, 5);
    const done = await service.append(alice, upload.id, 5, body(file.subarray(5, 10), file.subarray(10)));
    assert.deepEqual(done, { offset: file.length, length: file.length, expiresAt: null });
    const { upload: finished } = await service.describe(alice, upload.id);
    assert.equal(finished.blob?.sha256, createHash('sha256').update(file).digest('hex'));
    assert.equal(finished.blob?.mime, 'application/pdf');
    assert.equal(blobs.staged.size, 0);
  });

  it('stores the same content once for two uploads', async () => {
    const { service, blobs } = world();
    for (let i = 0; i < 2; i++) {
      const upload = await service.create(alice, 4, plain);
      await service.append(alice, upload.id, 0, body(Buffer.from('%abc')));
    }
    assert.equal(blobs.blobs.size, 1);
  });

  it('refuses a file over the size limit, a quota overrun and a rate overrun, storing nothing', async () => {
    const { service, storage, blobs } = world({ uploadsPerMinute: 3 });
    await rejectsWith(service.create(alice, 1001, plain), 'file_too_large');
    await service.create(alice, 1000, plain);
    await service.create(alice, 1000, plain);
    const quota = await rejectsWith(service.create(alice, 1, plain), 'quota_exceeded');
    assert.match(quota.message, /2000 of 2000 bytes/);
    assert.equal(storage.rows.size, 2);
    assert.equal(blobs.staged.size, 2);
    const rate = await rejectsWith(service.create(alice, 1, plain), 'rate_limited');
    assert.ok((rate.retryAfterSeconds ?? 0) >= 1);
  });

  it('deletes an upload whose sniffed type is not allowed when its last byte arrives', async () => {
    const { service, storage, blobs } = world({ allowedTypes: 'image/*' });
    const upload = await service.create(alice, 4, plain);
    await rejectsWith(service.append(alice, upload.id, 0, body(Buffer.from('%PDF'))), 'type_not_allowed');
    assert.equal(storage.rows.size, 0);
    assert.equal(blobs.staged.size + blobs.blobs.size, 0);
    await rejectsWith(service.progress(alice, upload.id), 'not_found');
  });

  it('keeps an encrypted upload as octet-stream whatever its bytes, even when the types are limited', async () => {
    const { service } = world({ allowedTypes: 'image/*' });
    const upload = await service.create(alice, PNG.length, { ...plain, encrypted: true });
    await service.append(alice, upload.id, 0, body(PNG));
    const { upload: finished } = await service.describe(alice, upload.id);
    assert.equal(finished.blob?.mime, 'application/octet-stream');
    assert.equal(finished.blob?.thumbnail, null);
    await rejectsWith(world({ allowEncrypted: false }).service.create(alice, 1, { ...plain, encrypted: true }), 'encrypted_not_allowed');
  });

  it('stores an image rewritten without its metadata, with its thumbnail, unless asked to keep it', async () => {
    const { service, blobs } = world();
    const stripped = await service.create(alice, PNG.length, plain);
    await service.append(alice, stripped.id, 0, body(PNG));
    const kept = await service.create(alice, PNG.length, { ...plain, keepMetadata: true });
    await service.append(alice, kept.id, 0, body(PNG));
    const a = (await service.describe(alice, stripped.id)).upload.blob;
    const b = (await service.describe(alice, kept.id)).upload.blob;
    assert.equal(blobs.blobs.get(a?.sha256 ?? '')?.at(8), 0, 'the stored copy is the rewrite');
    assert.equal(a?.size, PNG.length);
    assert.equal(b?.sha256, createHash('sha256').update(PNG).digest('hex'));
    assert.deepEqual([a?.width, a?.height, a?.thumbnail?.width], [4, 3, 2]);
    assert.equal(blobs.staged.size, 0);
  });

  it('keeps the bytes up to the length of a body that goes past it, answers file_too_large, and finishes at the next HEAD', async () => {
    const { service } = world();
    const upload = await service.create(alice, 4, plain);
    const error = await rejectsWith(service.append(alice, upload.id, 0, body(Buffer.from('%abcdef'))), 'file_too_large');
    assert.equal(error.details?.offset, 4);
    assert.deepEqual(await service.progress(alice, upload.id), { offset: 4, length: 4, expiresAt: null });
    assert.ok((await service.describe(alice, upload.id)).upload.blob);
  });

  it('finishes at the next HEAD an upload whose bytes all arrived before the finish failed', async () => {
    const { service, storage, blobs } = world();
    const upload = await service.create(alice, 4, plain);
    const complete = storage.completeUpload.bind(storage);
    storage.completeUpload = async () => {
      throw new Error('the database went away');
    };
    await assert.rejects(service.append(alice, upload.id, 0, body(Buffer.from('%abc'))), /went away/);
    storage.completeUpload = complete;
    // The bytes were moved in as a blob before the row could say so: the client is asked for them again.
    assert.deepEqual(await service.progress(alice, upload.id), { offset: 0, length: 4, expiresAt: upload.expiresAt });
    await service.append(alice, upload.id, 0, body(Buffer.from('%abc')));
    assert.equal((await service.describe(alice, upload.id)).upload.blob?.size, 4);
    assert.equal(blobs.blobs.size, 1);
  });

  it('answers another user, an unknown id and a malformed id alike: not_found', async () => {
    const { service } = world();
    const upload = await service.create(alice, 4, plain);
    await rejectsWith(service.progress(bob, upload.id), 'not_found');
    await rejectsWith(service.append(bob, upload.id, 0, body(Buffer.from('%abc'))), 'not_found');
    await rejectsWith(service.describe(bob, upload.id), 'not_found');
    await rejectsWith(service.terminate(bob, upload.id), 'not_found');
    await rejectsWith(service.progress(alice, newUploadId()), 'not_found');
    await rejectsWith(service.progress(alice, '../../etc/passwd'), 'not_found');
  });

  it('refuses a PATCH after the upload expired with upload_expired', async () => {
    const { service, clock } = world();
    const upload = await service.create(alice, 4, plain);
    clock.advance(3_600_000);
    await rejectsWith(service.append(alice, upload.id, 0, body(Buffer.from('%abc'))), 'upload_expired');
  });

  it('terminates an upload unless a message carries it', async () => {
    const { service, storage, blobs } = world();
    const upload = await service.create(alice, 4, plain);
    await service.append(alice, upload.id, 0, body(Buffer.from('%a')));
    await service.terminate(alice, upload.id);
    assert.equal(storage.rows.size + blobs.staged.size, 0);
    const sent = await service.create(alice, 1, plain);
    storage.referenced.add(sent.id);
    await rejectsWith(service.terminate(alice, sent.id), 'attachment_referenced');
  });

  it('ends an earlier PATCH of the same upload that is still being read, and carries on from what it wrote', async () => {
    const { service } = world();
    const upload = await service.create(alice, 6, plain);
    let feed!: ReadableStreamDefaultController<Uint8Array>;
    const stalled = new ReadableStream<Uint8Array>({ start: (controller) => void (feed = controller) });
    const first = service.append(alice, upload.id, 0, stalled);
    feed.enqueue(Buffer.from('%ab'));
    // The stalled body's first chunk is written before the second PATCH looks: wait for it through HEAD.
    while ((await service.progress(alice, upload.id)).offset < 3) await new Promise((resolve) => setImmediate(resolve));
    const second = service.append(alice, upload.id, 3, body(Buffer.from('cde')));
    await rejectsWith(first, 'invalid_upload');
    assert.equal((await second).offset, 6);
  });
});

describe('upload metadata', () => {
  it('parses tus pairs, with and without values', () => {
    const header = `filename ${Buffer.from('photo ✓.jpg').toString('base64')},encrypted ${Buffer.from('1').toString('base64')},novalue`;
    const pairs = parseUploadMetadataHeader(header);
    assert.deepEqual([...pairs], [['filename', 'photo ✓.jpg'], ['encrypted', '1'], ['novalue', '']]);
    assert.deepEqual(readUploadMetadata(pairs), { name: 'photo ✓.jpg', declaredType: '', encrypted: true, keepMetadata: false, durationMs: null });
    assert.throws(() => parseUploadMetadataHeader('a eA==,a eQ=='), /twice/);
    assert.throws(() => parseUploadMetadataHeader('a b c'), /pairs/);
    assert.throws(() => readUploadMetadata(new Map([['duration', '-5']])), /duration/);
    assert.throws(() => readUploadMetadata(new Map([['encrypted', 'yes']])), /encrypted/);
  });

  it('makes a file name a harmless base name of at most 255 bytes', () => {
    assert.equal(fileName('../../etc/passwd'), 'passwd');
    assert.equal(fileName('C:\\Users\\me\\report.pdf'), 'report.pdf');
    assert.equal(fileName('evil\u202Egpj.exe'), 'evilgpj.exe');
    assert.equal(fileName('a\u0000b\nc'), 'abc');
    assert.equal(fileName('..'), '');
    const long = fileName('é'.repeat(200));
    assert.equal(Buffer.byteLength(long), 254);
    assert.equal(long, 'é'.repeat(127));
  });
});
