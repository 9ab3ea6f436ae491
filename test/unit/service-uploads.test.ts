import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { ChatError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { fileName, parseUploadMetadataHeader, readUploadMetadata } from '../../src/services/attachments/upload-metadata.js';
import { type UploadMedia, UploadService, type UploadSettings } from '../../src/services/attachments/uploads.js';
import { stripHeifMetadata } from '../../src/services/attachments/heif-metadata.js';
import { isUploadId, newUploadId } from '../../src/services/attachments/ids.js';
import { MemoryRateLimitStore } from '../../src/services/limits/memory-rate-limit-store.js';
import type { Principal } from '../../src/services/types.js';
import { MemoryBlobStore } from '../../src/storage/blobs/memory.js';
import { SqliteAttachmentStorage } from '../../src/storage/sqlite/attachments.js';
import { openSqliteMessaging } from '../helpers/sqlite-messaging.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { syntheticHeif } from '../helpers/heif.js';

/**
 * The upload rules over the real SQLite attachment storage (in memory) and the
 * in-memory blob store; the media functions are a small fake (the real ones
 * are C2b's, tested in attachment-media.test.ts and over the server).
 */

/**
 * PNG, PDF and HEIC by their magic numbers; a "PNG" whose 9th byte is 1 has
 * metadata to strip; a HEIC is never read (as sharp cannot read an iPhone's)
 * and goes to the real HEIF metadata stripper.
 */
const media: UploadMedia = {
  sniffBytes: 16,
  sniff: (bytes) =>
    bytes[0] === 0x89 && bytes[1] === 0x50
      ? 'image/png'
      : bytes[0] === 0x25
        ? 'application/pdf'
        : Buffer.from(bytes).toString('latin1', 4, 12) === 'ftypheic'
          ? 'image/heic'
          : 'application/octet-stream',
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
  stripWithoutDecoding: async (mime, file) => (mime === 'image/heic' ? stripHeifMetadata(file) : undefined),
};

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1]);

async function world(overrides: Partial<UploadSettings> = {}) {
  const clock = new FakeClock(Date.now());
  const fixture = await openSqliteMessaging({ readDiffusionAbove: 50 });
  after(() => fixture.close());
  const principal = async (name: string): Promise<Principal> => {
    const id = await fixture.user(name);
    return { user: { id }, deviceId: await fixture.device(id) } as unknown as Principal;
  };
  const alice = await principal('alice');
  const bob = await principal('bob');
  const storage = new SqliteAttachmentStorage(fixture.store);
  const blobs = new MemoryBlobStore(clock);
  const rows = () => (fixture.store.db.prepare('SELECT COUNT(*) AS n FROM uploads').get() as { n: number }).n;
  /** A message carries the upload: the ref appendMessage writes (test fixture, as in the storage contract). */
  const reference = async (uploadId: string) => {
    // No thread is needed for what the service asks (is it referenced?): the foreign key is off for this one row.
    fixture.store.db.pragma('foreign_keys = OFF');
    fixture.store.db.prepare('INSERT INTO attachment_refs (upload_id, thread_id, seq) VALUES (?, 1, 1)').run(uploadId);
    fixture.store.db.pragma('foreign_keys = ON');
  };
  const settings: UploadSettings = {
    maxFileBytes: 1000,
    quotaBytes: 2000,
    allowedTypes: '*',
    allowEncrypted: true,
    uploadsPerMinute: 100,
    expiryMs: 3_600_000,
    ...overrides,
  };
  /** What the service logged, one parsed JSON line each. */
  const logged: { level: number; msg: string; reason?: string }[] = [];
  const log = createLogger(
    'debug',
    new Writable({
      write(line: Buffer, _encoding, done) {
        logged.push(JSON.parse(line.toString()) as { level: number; msg: string });
        done();
      },
    }),
  );
  const service = new UploadService({
    storage,
    blobs,
    clock,
    limits: new MemoryRateLimitStore(clock),
    media,
    settings,
    log,
  });
  return { clock, storage, blobs, service, alice, bob, rows, reference, logged };
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

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return parts;
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
    const { service, blobs, alice } = await world();
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
    assert.equal((await blobs.stats()).staged, 0);
  });

  it('finishes an empty file at its creation', async () => {
    const { service, alice } = await world();
    const upload = await service.create(alice, 0, plain);
    assert.equal(upload.blob?.size, 0);
    assert.equal(upload.blob?.sha256, createHash('sha256').digest('hex'));
    assert.deepEqual(await service.progress(alice, upload.id), { offset: 0, length: 0, expiresAt: null });
  });

  it('stores the same content once for two uploads', async () => {
    const { service, blobs, alice } = await world();
    for (let i = 0; i < 2; i++) {
      const upload = await service.create(alice, 4, plain);
      await service.append(alice, upload.id, 0, body(Buffer.from('%abc')));
    }
    assert.equal((await blobs.stats()).blobs, 1);
  });

  it('refuses a file over the size limit, a quota overrun and a rate overrun, storing nothing', async () => {
    const { service, blobs, alice, rows } = await world({ uploadsPerMinute: 3 });
    await rejectsWith(service.create(alice, 1001, plain), 'file_too_large');
    await service.create(alice, 1000, plain);
    await service.create(alice, 1000, plain);
    const quota = await rejectsWith(service.create(alice, 1, plain), 'quota_exceeded');
    assert.match(quota.message, /2000 of 2000 bytes/);
    assert.equal(rows(), 2);
    assert.equal((await blobs.stats()).staged, 2);
    const rate = await rejectsWith(service.create(alice, 1, plain), 'rate_limited');
    assert.ok((rate.retryAfterSeconds ?? 0) >= 1);
  });

  it('deletes an upload whose sniffed type is not allowed when its last byte arrives', async () => {
    const { service, blobs, alice, rows } = await world({ allowedTypes: 'image/*' });
    const upload = await service.create(alice, 4, plain);
    await rejectsWith(service.append(alice, upload.id, 0, body(Buffer.from('%PDF'))), 'type_not_allowed');
    assert.equal(rows(), 0);
    assert.deepEqual(await blobs.stats(), { blobs: 0, blobBytes: 0, staged: 0, stagedBytes: 0 });
    await rejectsWith(service.progress(alice, upload.id), 'not_found');
  });

  it('keeps an encrypted upload as octet-stream whatever its bytes, even when the types are limited', async () => {
    const { service, alice } = await world({ allowedTypes: 'image/*' });
    const upload = await service.create(alice, PNG.length, { ...plain, encrypted: true });
    await service.append(alice, upload.id, 0, body(PNG));
    const { upload: finished } = await service.describe(alice, upload.id);
    assert.equal(finished.blob?.mime, 'application/octet-stream');
    assert.equal(finished.blob?.thumbnail, null);
    const refusing = await world({ allowEncrypted: false });
    await rejectsWith(refusing.service.create(refusing.alice, 1, { ...plain, encrypted: true }), 'encrypted_not_allowed');
  });

  it('stores an image rewritten without its metadata, with its thumbnail, unless asked to keep it', async () => {
    const { service, blobs, alice } = await world();
    const stripped = await service.create(alice, PNG.length, plain);
    await service.append(alice, stripped.id, 0, body(PNG));
    const kept = await service.create(alice, PNG.length, { ...plain, keepMetadata: true });
    await service.append(alice, kept.id, 0, body(PNG));
    const a = (await service.describe(alice, stripped.id)).upload.blob;
    const b = (await service.describe(alice, kept.id)).upload.blob;
    const stored = Buffer.concat(await collect(blobs.readBlob(a?.sha256 ?? '')));
    assert.equal(stored.at(8), 0, 'the stored copy is the rewrite');
    assert.equal(a?.size, PNG.length);
    assert.equal(b?.sha256, createHash('sha256').update(PNG).digest('hex'));
    assert.deepEqual([a?.width, a?.height, a?.thumbnail?.width], [4, 3, 2]);
    assert.equal((await blobs.stats()).staged, 0);
  });

  it('blanks the EXIF and XMP of a HEIC it cannot decode, unless asked to keep them; one it cannot parse is stored as sent, with a warning', async () => {
    const { service, blobs, alice, logged } = await world();
    const photo = syntheticHeif([
      { id: 1, type: 'hvc1', data: Buffer.alloc(100, 7) },
      { id: 2, type: 'Exif', data: Buffer.from('\0\0\0\0MM\0*GPS 48.8567N 2.3508E') },
      { id: 3, type: 'mime', contentType: 'application/rdf+xml', data: Buffer.from('<x:xmpmeta exif:GPSLatitude="48,51.4N"/>') },
    ]);
    const blanked = Buffer.from(photo.bytes);
    for (const id of [2, 3]) for (const range of photo.extents.get(id) ?? []) blanked.fill(0, range.start, range.end + 1);
    const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
    const send = async (bytes: Uint8Array, keepMetadata: boolean) => {
      const upload = await service.create(alice, bytes.length, { ...plain, keepMetadata });
      await service.append(alice, upload.id, 0, body(bytes.subarray(0, 50), bytes.subarray(50)));
      const blob = (await service.describe(alice, upload.id)).upload.blob;
      assert.ok(blob);
      return { blob, stored: Buffer.concat(await collect(blobs.readBlob(blob.sha256))) };
    };

    const stripped = await send(photo.bytes, false);
    assert.equal(stripped.blob.mime, 'image/heic');
    assert.ok(stripped.stored.equals(blanked), 'stored with the metadata items zeroed, everything else as sent');
    assert.deepEqual([stripped.blob.size, stripped.blob.sha256], [photo.bytes.length, sha(blanked)]);
    assert.equal(stripped.stored.indexOf('GPS'), -1);

    const kept = await send(photo.bytes, true);
    assert.equal(kept.blob.sha256, sha(photo.bytes), 'keep_metadata: as sent');
    assert.equal(logged.filter((line) => line.level >= 40).length, 0, 'no warning so far');

    const unreadable = Buffer.from(photo.bytes);
    unreadable.writeUInt32BE(0xffffffff, photo.metaStart); // the meta box's size: past the end of the file
    const unparsed = await send(unreadable, false);
    assert.equal(unparsed.blob.sha256, sha(unreadable), 'stored as sent');
    const warnings = logged.filter((line) => line.level === 40);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]?.msg ?? '', /metadata not removed/);
    assert.match(warnings[0]?.reason ?? '', /meta/);
    assert.equal((await blobs.stats()).staged, 0);
  });

  it('keeps the bytes up to the length of a body that goes past it, answers file_too_large, and finishes at the next HEAD', async () => {
    const { service, alice } = await world();
    const upload = await service.create(alice, 4, plain);
    const error = await rejectsWith(service.append(alice, upload.id, 0, body(Buffer.from('%abcdef'))), 'file_too_large');
    assert.equal(error.details?.offset, 4);
    assert.deepEqual(await service.progress(alice, upload.id), { offset: 4, length: 4, expiresAt: null });
    assert.ok((await service.describe(alice, upload.id)).upload.blob);
  });

  it('finishes at the next HEAD an upload whose bytes all arrived before the finish failed', async () => {
    const { service, storage, blobs, alice } = await world();
    const upload = await service.create(alice, 4, plain);
    const complete = storage.completeUpload.bind(storage);
    storage.completeUpload = async () => {
      throw new Error('the database went away');
    };
    await assert.rejects(service.append(alice, upload.id, 0, body(Buffer.from('%abc'))), /went away/);
    storage.completeUpload = complete;
    // The blob was stored before the row could say so, and the staged copy kept: the next HEAD finishes it.
    assert.deepEqual(await service.progress(alice, upload.id), { offset: 4, length: 4, expiresAt: null });
    assert.equal((await service.describe(alice, upload.id)).upload.blob?.size, 4);
    assert.equal((await blobs.stats()).staged, 0);
    assert.equal((await blobs.stats()).blobs, 1);
  });

  it('stores the content again when collection took it between storing it and the row naming it (file, thumbnail, rewritten image)', async () => {
    const { service, storage, blobs, alice } = await world();
    const complete = storage.completeUpload.bind(storage);
    // Collection deleting the blobs in the gap (it may: no row named them yet).
    storage.completeUpload = async (id, blob, now) => {
      for (const sha256 of [blob.sha256, blob.thumbnail?.sha256]) if (sha256) await blobs.deleteBlob(sha256);
      return complete(id, blob, now);
    };
    const file = Buffer.from('%PDF deduplicated');
    await blobs.putBlob(file);
    const pdf = await service.create(alice, file.length, plain);
    await service.append(alice, pdf.id, 0, body(file));
    const image = await service.create(alice, PNG.length, plain);
    await service.append(alice, image.id, 0, body(PNG));
    for (const id of [pdf.id, image.id]) {
      const blob = (await service.describe(alice, id)).upload.blob;
      assert.ok(blob);
      for (const sha256 of [blob.sha256, blob.thumbnail?.sha256]) {
        if (sha256) assert.notEqual(await blobs.blobSize(sha256), undefined, `${id}: ${sha256} is stored`);
      }
    }
    assert.deepEqual(await collect(blobs.readBlob(createHash('sha256').update(file).digest('hex'))), [file]);
    assert.equal((await blobs.stats()).staged, 0, 'the staged copies went once the blobs were checked');
  });

  it('answers a finish whose staged file another node moved meanwhile from the row: complete, or a retryable unavailable', async () => {
    const { service, storage, blobs, alice } = await world();
    const file = Buffer.from('%PDF twice');
    const sha256 = createHash('sha256').update(file).digest('hex');
    const commit = blobs.commitStaged.bind(blobs);
    let otherNode: ((id: string) => Promise<void>) | undefined;
    blobs.commitStaged = async (id, hash) => {
      await otherNode?.(id);
      otherNode = undefined;
      return commit(id, hash);
    };
    // The other node finished it first: stored the blob, completed the row, deleted the staged file.
    otherNode = async (id) => {
      await commit(id, sha256);
      await storage.completeUpload(id, { sha256, size: file.length, mime: 'application/pdf', width: null, height: null, thumbnail: null }, Date.now());
      await blobs.deleteStaged(id);
    };
    const first = await service.create(alice, file.length, plain);
    assert.deepEqual(await service.append(alice, first.id, 0, body(file)), { offset: file.length, length: file.length, expiresAt: null });
    assert.equal((await service.describe(alice, first.id)).upload.blob?.sha256, sha256);
    // The other node moved it in but has not recorded it yet (or stopped there): try again.
    const other = Buffer.from('%PDF other');
    // (A node on a file system without hard links, where the staged file itself becomes the blob.)
    otherNode = async (id) => {
      await commit(id, createHash('sha256').update(other).digest('hex'));
      await blobs.deleteStaged(id);
    };
    const second = await service.create(alice, other.length, plain);
    const error = await rejectsWith(service.append(alice, second.id, 0, body(other)), 'unavailable');
    assert.equal(error.status, 503);
    assert.match(error.message, /try again/);
    assert.equal((await storage.upload(second.id))?.completedAt, null, 'nothing recorded');
  });

  it('answers another user, an unknown id and a malformed id alike: not_found', async () => {
    const { service, alice, bob } = await world();
    const upload = await service.create(alice, 4, plain);
    await rejectsWith(service.progress(bob, upload.id), 'not_found');
    await rejectsWith(service.append(bob, upload.id, 0, body(Buffer.from('%abc'))), 'not_found');
    await rejectsWith(service.describe(bob, upload.id), 'not_found');
    await rejectsWith(service.terminate(bob, upload.id), 'not_found');
    await rejectsWith(service.progress(alice, newUploadId()), 'not_found');
    await rejectsWith(service.progress(alice, '../../etc/passwd'), 'not_found');
  });

  it('refuses a PATCH after the upload expired with upload_expired', async () => {
    const { service, clock, alice } = await world();
    const upload = await service.create(alice, 4, plain);
    clock.advance(3_600_000);
    await rejectsWith(service.append(alice, upload.id, 0, body(Buffer.from('%abc'))), 'upload_expired');
  });

  it('terminates an upload unless a message carries it', async () => {
    const { service, blobs, alice, rows, reference } = await world();
    const upload = await service.create(alice, 4, plain);
    await service.append(alice, upload.id, 0, body(Buffer.from('%a')));
    await service.terminate(alice, upload.id);
    assert.equal(rows(), 0);
    assert.equal((await blobs.stats()).staged, 0);
    const sent = await service.create(alice, 1, plain);
    await reference(sent.id);
    await rejectsWith(service.terminate(alice, sent.id), 'attachment_referenced');
  });

  it('ends an earlier PATCH of the same upload that is still being read, and carries on from what it wrote', async () => {
    const { service, alice } = await world();
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

  it('lets an older PATCH whose storage read ends after a newer one arrived give up, never ending the newer one', async () => {
    const { service, alice } = await world();
    const upload = await service.create(alice, 6, plain);
    // Both start before either has read its upload row: the older one's connection was cut, its client resumed.
    const older = service.append(alice, upload.id, 0, body(Buffer.from('%ab')));
    const newer = service.append(alice, upload.id, 0, body(Buffer.from('%abcde')));
    const refused = await rejectsWith(older, 'invalid_upload');
    assert.match(refused.message, /a newer PATCH/);
    assert.equal((await newer).offset, 6, 'the newer PATCH, the one its client waits for, wrote the file');
    const { upload: finished } = await service.describe(alice, upload.id);
    assert.equal(finished.length, 6);
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
    assert.equal(fileName('\ufeffa\u200bb\u2028c\u061cd.txt'), 'abcd.txt');
    assert.equal(fileName('a\u0000b\nc'), 'abc');
    assert.equal(fileName('..'), '');
    const long = fileName('é'.repeat(200));
    assert.equal(Buffer.byteLength(long), 254);
    assert.equal(long, 'é'.repeat(127));
  });
});
