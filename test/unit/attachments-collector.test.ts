import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { Collector, type CollectionReport } from '../../src/services/attachments/collector.js';
import { UploadService } from '../../src/services/attachments/uploads.js';
import { MemoryRateLimitStore } from '../../src/services/limits/memory-rate-limit-store.js';
import type { Principal } from '../../src/services/types.js';
import { MemoryBlobStore } from '../../src/storage/blobs/memory.js';
import { SqliteAttachmentStorage } from '../../src/storage/sqlite/attachments.js';
import { memoryStore, seedThread } from '../contracts/sqlite-fixture.js';
import { FakeClock } from '../helpers/fake-clock.js';

const HOUR = 3_600_000;
const GRACE = 24 * HOUR;

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

function lines(): { stream: Writable; text: () => string } {
  const parts: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      parts.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => parts.join('') };
}

/**
 * Collection over the real SQLite storage (in memory) and the memory blob
 * store, on a fake clock. Uploads are written as the upload path writes them;
 * a message's reference is inserted as appendMessage will write it.
 */
function world() {
  const clock = new FakeClock(1_700_000_000_000);
  const blobs = new MemoryBlobStore(clock);
  const store = memoryStore();
  const userId = store.users.insert({ username: 'alice', displayName: 'alice', passwordHash: 'x', now: 1 }) as number;
  const deviceId = store.devices.insert({ userId, name: 'd', platform: 'cli', tokenHash: Buffer.from('t'), now: 1 }) as number;
  const { threadId } = seedThread(store, [userId], { userId, deviceId }, 1, 1);
  const insertRef = store.db.prepare<[string, number]>('INSERT INTO attachment_refs (upload_id, thread_id, seq) VALUES (?, ?, 1)');
  const storage = new SqliteAttachmentStorage(store);
  /** A test holds collect() on `gate`, or makes it fail; `calls` counts the passes that reached the database. */
  const hooks: { gate: Promise<void> | undefined; fail: boolean; calls: number } = { gate: undefined, fail: false, calls: 0 };
  const collect = storage.collect.bind(storage);
  storage.collect = async (now, graceMs, dryRun) => {
    if (hooks.fail) throw new Error('database away');
    hooks.calls += 1;
    await hooks.gate;
    return collect(now, graceMs, dryRun);
  };
  const log = lines();
  const collector = new Collector({ storage, blobs, clock, graceMs: GRACE, log: createLogger('info', log.stream) });
  const create = async (id: string, length: number, expiresInMs = 24 * HOUR): Promise<void> => {
    const outcome = await storage.createUpload(
      { id, userId, deviceId, length, name: `${id}.bin`, declaredType: 'application/octet-stream', encrypted: false, keepMetadata: false, durationMs: null, now: clock.now(), expiresAt: clock.now() + expiresInMs },
      2 ** 40,
    );
    assert.equal(outcome.kind, 'created');
  };
  /** An upload in progress with `bytes` staged. */
  const started = async (id: string, bytes: number, expiresInMs: number): Promise<void> => {
    await create(id, 1000, expiresInMs);
    await blobs.createStaged(id);
    await blobs.appendStaged(id, 0, once(new Uint8Array(bytes)), 1000);
  };
  /** A finished upload, its bytes committed to the store as the upload path does. */
  const finished = async (id: string, content: string, options: { thumbnail?: string } = {}): Promise<string> => {
    const bytes = new TextEncoder().encode(content);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await create(id, bytes.byteLength);
    await blobs.createStaged(id);
    await blobs.appendStaged(id, 0, once(bytes), bytes.byteLength);
    await blobs.commitStaged(id, sha256);
    const thumbnail = options.thumbnail === undefined ? null : await blobs.putBlob(new TextEncoder().encode(options.thumbnail));
    const blob = { sha256, size: bytes.byteLength, mime: 'application/octet-stream', width: null, height: null, thumbnail: thumbnail && { sha256: thumbnail.sha256, width: 1, height: 1 } };
    assert.equal(await storage.completeUpload(id, blob, clock.now()), true);
    await blobs.deleteStaged(id);
    return sha256;
  };
  const reference = async (id: string): Promise<void> => {
    await store.batcher.submit(() => insertRef.run(id, threadId));
  };
  const uploadIds = (): string[] => store.db.prepare<[], string>('SELECT id FROM uploads ORDER BY id').pluck().all();
  const orphans = (): Array<{ sha256: string; since: number }> => store.db.prepare<[], { sha256: string; since: number }>('SELECT sha256, since FROM blob_orphans ORDER BY sha256').all();
  /** The upload service over the same storage, as a node finishing uploads runs it (media: files only). */
  const uploads = new UploadService({
    storage,
    blobs,
    clock,
    limits: new MemoryRateLimitStore(clock),
    media: {
      sniffBytes: 16,
      sniff: () => 'application/octet-stream',
      typeAllowed: () => true,
      processImage: async () => undefined,
      stripWithoutDecoding: async () => undefined,
    },
    settings: { maxFileBytes: 1 << 20, quotaBytes: 1 << 30, allowedTypes: '*', allowEncrypted: true, uploadsPerMinute: 1000, expiryMs: 24 * HOUR },
    log: createLogger('info', log.stream),
  });
  const alice = { user: { id: userId }, deviceId } as unknown as Principal;
  /** A client uploading `content` in one PATCH, through the service: the finish runs at its last byte. */
  const upload = async (content: string): Promise<string> => {
    const bytes = new TextEncoder().encode(content);
    const row = await uploads.create(alice, bytes.byteLength, { name: 'f.bin', declaredType: '', encrypted: false, keepMetadata: false, durationMs: null });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    assert.equal((await uploads.append(alice, row.id, 0, body)).expiresAt, null, 'finished');
    return row.id;
  };
  return { clock, blobs, storage, hooks, collector, log, started, finished, reference, uploadIds, orphans, upload };
}

const NOTHING: Omit<CollectionReport, 'dryRun'> = {
  incompleteUploads: { count: 0, bytes: 0 },
  unreferencedUploads: 0,
  orphanedBlobs: 0,
  blobsDeleted: { count: 0, bytes: 0 },
  strayStaged: { count: 0, bytes: 0 },
  strayBlobs: { count: 0, bytes: 0 },
  restoredBlobs: 0,
};

describe('Collector', () => {
  it('removes an upload not finished before it expired, with its staged bytes, and keeps one still in time', async () => {
    const { clock, blobs, collector, started, uploadIds } = world();
    await started('late', 700, HOUR);
    await started('fresh', 5, 3 * HOUR);
    clock.time += 2 * HOUR;
    const report = await collector.run();
    assert.deepEqual(report, { ...NOTHING, dryRun: false, incompleteUploads: { count: 1, bytes: 700 } });
    assert.equal(await blobs.stagedSize('late'), undefined);
    assert.equal(await blobs.stagedSize('fresh'), 5);
    assert.deepEqual(uploadIds(), ['fresh']);
  });

  it('deletes the content of an upload no message referenced only a grace after the upload is collected', async () => {
    const { clock, blobs, collector, finished, reference, orphans } = world();
    const lonely = await finished('lonely', 'nobody sent me', { thumbnail: 'tiny' });
    const sent = await finished('sent', 'in a message');
    await reference('sent');
    clock.time += GRACE + HOUR;
    const first = await collector.run();
    assert.deepEqual(first, { ...NOTHING, dryRun: false, unreferencedUploads: 1, orphanedBlobs: 2 });
    assert.equal(await blobs.blobSize(lonely), 14, 'an orphan stays for the grace');
    clock.time += GRACE / 2;
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false });
    clock.time += GRACE / 2 + 1;
    const third = await collector.run();
    assert.deepEqual(third, { ...NOTHING, dryRun: false, blobsDeleted: { count: 2, bytes: 14 + 4 } });
    assert.equal(await blobs.blobSize(lonely), undefined);
    assert.equal(await blobs.blobSize(sent), 12, 'referenced content stays');
    assert.deepEqual(orphans(), [], 'deleted orphans are forgotten');
  });

  it('keeps content another upload still names (deduplicated) when one of its uploads is collected', async () => {
    const { clock, blobs, collector, finished, reference } = world();
    const shared = await finished('first', 'same bytes');
    await finished('second', 'same bytes');
    await reference('second');
    clock.time += GRACE + HOUR;
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false, unreferencedUploads: 1 });
    clock.time += 2 * GRACE;
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false });
    assert.equal(await blobs.blobSize(shared), 10);
  });

  it('spares an orphan past its grace whose content was just committed again by a new upload', async () => {
    const { clock, blobs, collector, finished, started, orphans } = world();
    const content = await finished('old', 'popular');
    clock.time += GRACE + HOUR;
    await collector.run();
    clock.time += GRACE + HOUR;
    // A new upload of the same content is committed (deduplicated into the blob) but its row is not complete yet.
    await started('new', 0, HOUR);
    await blobs.appendStaged('new', 0, once(new TextEncoder().encode('popular')), 7);
    assert.deepEqual(await blobs.commitStaged('new', content), { created: false });
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false });
    assert.equal(await blobs.blobSize(content), 7);
    assert.deepEqual(
      orphans().map((orphan) => orphan.sha256),
      [content],
      'still an orphan until an upload completes with it',
    );
  });

  for (const moment of ['its first look', 'its last look'] as const) {
    it(`keeps an orphan's content that a new upload of the same bytes finishes with between ${moment} and the delete`, async () => {
      const { clock, blobs, storage, collector, finished, upload, reference } = world();
      const content = await finished('old', 'popular bytes');
      clock.time += GRACE + HOUR;
      await collector.run();
      clock.time += GRACE + HOUR;
      // The reviewer's race, made deterministic: the collector reads "named? no", then another node
      // finishes an upload of the same bytes (deduplicated into the old blob) before the collector deletes.
      const named = storage.blobNamed.bind(storage);
      let calls = 0;
      let newUpload = '';
      storage.blobNamed = async (sha256) => {
        const answer = await named(sha256);
        calls += 1;
        if (sha256 === content && calls === (moment === 'its first look' ? 1 : 2)) newUpload = await upload('popular bytes');
        return answer;
      };
      await collector.run();
      assert.notEqual(newUpload, '', 'the upload ran inside the collector');
      await reference(newUpload);
      assert.equal((await storage.upload(newUpload))?.blob?.sha256, content, 'complete with that content');
      assert.equal(await blobs.blobSize(content), 13, 'the content a complete, sent upload names is there');
      assert.equal((await blobs.stats()).staged, 0, 'and its staged copy is gone');
    });
  }

  it('deletes the staged copy a crash left behind a finished upload (an original with its location), committing it first if its blob went', async () => {
    const { blobs, storage, collector, finished } = world();
    const kept = await finished('kept', 'stored fine');
    await blobs.createStaged('kept');
    await blobs.appendStaged('kept', 0, once(new TextEncoder().encode('the original, GPS and all')), 100);
    const lost = await finished('lost', 'blob went');
    await blobs.createStaged('lost');
    await blobs.appendStaged('lost', 0, once(new TextEncoder().encode('blob went')), 100);
    await blobs.deleteBlob(lost);
    assert.deepEqual(await collector.run({ dryRun: true }), { ...NOTHING, dryRun: true, strayStaged: { count: 2, bytes: 25 + 9 } });
    assert.equal((await blobs.stats()).staged, 2, 'a dry run changes nothing');
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false, strayStaged: { count: 2, bytes: 25 + 9 } });
    assert.equal((await blobs.stats()).staged, 0);
    assert.equal(await blobs.blobSize(kept), 11);
    assert.equal(await blobs.blobSize(lost), 9, 'the staged copy was that content: committed as the blob');
    assert.notEqual(await storage.upload('lost'), undefined);
  });

  it('deletes staged files whose upload row is gone, and keeps those of live uploads', async () => {
    const { blobs, collector, started } = world();
    await started('live', 33, HOUR);
    await blobs.createStaged('ghost');
    await blobs.appendStaged('ghost', 0, once(new Uint8Array(33)), 100);
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false, strayStaged: { count: 1, bytes: 33 } });
    const staged: string[] = [];
    for await (const id of blobs.listStaged()) staged.push(id);
    assert.deepEqual(staged, ['live']);
  });

  it('deletes a blob no upload names once it is older than the grace, but never an orphan still in its grace', async () => {
    const { clock, blobs, collector, finished, orphans } = world();
    const stray = await blobs.putBlob(new TextEncoder().encode('left by a crash'));
    assert.deepEqual(await collector.run({ sweep: true }), { ...NOTHING, dryRun: false }, 'young: it may be an upload about to complete');
    const orphan = await finished('unsent', 'collected soon');
    clock.time += GRACE + HOUR;
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false, unreferencedUploads: 1, orphanedBlobs: 1 }, 'the timer\'s pass does not sweep');
    assert.equal(await blobs.blobSize(stray.sha256), 15);
    const report = await collector.run({ sweep: true });
    assert.deepEqual(report, { ...NOTHING, dryRun: false, strayBlobs: { count: 1, bytes: 15 } });
    assert.equal(await blobs.blobSize(stray.sha256), undefined);
    assert.equal(await blobs.blobSize(orphan), 14, 'an old file, but an orphan for less than the grace');
    assert.equal(orphans().length, 1);
  });

  it('reports in a dry run what a pass would remove, changing nothing', async () => {
    const { clock, blobs, collector, finished, started, uploadIds, orphans } = world();
    const orphan = await finished('gone-before', 'orphan content');
    clock.time += GRACE + HOUR;
    await collector.run();
    await started('late', 50, HOUR);
    await blobs.createStaged('ghost');
    await blobs.putBlob(new Uint8Array([1, 2, 3]));
    await finished('unsent', 'x');
    clock.time += GRACE + HOUR;
    const before = { rows: uploadIds(), orphans: orphans(), stats: await blobs.stats() };
    const dry = await collector.run({ dryRun: true, sweep: true });
    assert.deepEqual(dry, {
      dryRun: true,
      incompleteUploads: { count: 1, bytes: 50 },
      unreferencedUploads: 1,
      orphanedBlobs: 1,
      blobsDeleted: { count: 1, bytes: 14 },
      strayStaged: { count: 1, bytes: 0 },
      strayBlobs: { count: 1, bytes: 3 },
      restoredBlobs: 0,
    });
    assert.deepEqual({ rows: uploadIds(), orphans: orphans(), stats: await blobs.stats() }, before);
    assert.deepEqual(await collector.run({ sweep: true }), { ...dry, dryRun: false }, 'the real pass does what the dry run said');
    assert.equal(await blobs.blobSize(orphan), undefined);
  });

  it('runs on its timer, never two passes at once, and stop waits for the pass under way', async () => {
    const { clock, hooks, collector } = world();
    let open: () => void = () => {};
    hooks.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    collector.start(HOUR);
    clock.time += HOUR;
    assert.equal(hooks.calls, 1);
    clock.time += HOUR;
    clock.time += HOUR;
    assert.equal(hooks.calls, 1, 'ticks while a pass runs are skipped');
    let stopped = false;
    const stopping = collector.stop().then(() => {
      stopped = true;
    });
    await Promise.resolve();
    assert.equal(stopped, false, 'stop waits for the pass');
    open();
    await stopping;
    clock.time += 5 * HOUR;
    assert.equal(hooks.calls, 1, 'no pass after stop');
  });

  it('logs a failed pass on the timer and tries again at the next tick; run() itself rejects', async () => {
    const { clock, hooks, collector, log } = world();
    hooks.fail = true;
    await assert.rejects(collector.run(), /database away/);
    collector.start(HOUR);
    clock.time += HOUR;
    await collector.stop();
    assert.match(log.text(), /collecting attachments failed/);
    hooks.fail = false;
    collector.start(HOUR);
    clock.time += HOUR;
    await collector.stop();
    assert.equal(hooks.calls, 1, 'the next tick ran a pass');
  });
});
