import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { Collector, type CollectionReport } from '../../src/services/attachments/collector.js';
import { MemoryBlobStore } from '../../src/storage/blobs/memory.js';
import type { AttachmentStorage, CollectedUploads, CompletedBlob, UploadRow } from '../../src/storage/ports/attachments.js';
import { FakeClock } from '../helpers/fake-clock.js';

const HOUR = 3_600_000;
const GRACE = 24 * HOUR;

/**
 * The part of AttachmentStorage collection uses, in memory, following the
 * port's doc comments. (The SQLite and PostgreSQL engines are on their own
 * branch; once they are in, the CLI's integration test runs collection over
 * the real one.)
 */
class FakeAttachmentStorage implements Pick<AttachmentStorage, 'collect' | 'orphansDue' | 'forgetOrphans' | 'blobNamed' | 'upload'> {
  readonly rows = new Map<string, UploadRow>();
  readonly referenced = new Set<string>();
  readonly orphans = new Map<string, number>();
  collectCalls = 0;
  /** Set by a test to hold collect() until it says so. */
  gate: Promise<void> | undefined;

  add(id: string, fields: { createdAt: number; expiresAt: number; completedAt?: number; blob?: CompletedBlob }): void {
    this.rows.set(id, {
      id,
      userId: 1,
      deviceId: 1,
      length: fields.blob?.size ?? 10,
      name: `${id}.bin`,
      declaredType: 'application/octet-stream',
      encrypted: false,
      keepMetadata: false,
      durationMs: null,
      createdAt: fields.createdAt,
      expiresAt: fields.expiresAt,
      completedAt: fields.completedAt ?? null,
      blob: fields.blob ?? null,
    });
    if (fields.blob !== undefined) {
      this.orphans.delete(fields.blob.sha256);
      if (fields.blob.thumbnail) this.orphans.delete(fields.blob.thumbnail.sha256);
    }
  }

  async upload(id: string): Promise<UploadRow | undefined> {
    return this.rows.get(id);
  }

  async collect(now: number, graceMs: number, dryRun: boolean): Promise<CollectedUploads> {
    this.collectCalls += 1;
    await this.gate;
    const incomplete = [...this.rows.values()].filter((row) => row.completedAt === null && row.expiresAt <= now).map((row) => row.id);
    const unreferenced = [...this.rows.values()]
      .filter((row) => row.completedAt !== null && row.completedAt <= now - graceMs && !this.referenced.has(row.id))
      .map((row) => row.id);
    const gone = new Set([...incomplete, ...unreferenced]);
    const named = (sha256: string, except: Set<string>): boolean =>
      [...this.rows.values()].some((row) => !except.has(row.id) && (row.blob?.sha256 === sha256 || row.blob?.thumbnail?.sha256 === sha256));
    const candidates = new Set(unreferenced.flatMap((id) => blobsOf(this.rows.get(id))));
    const orphanedBlobs = [...candidates].filter((sha256) => !named(sha256, gone));
    if (!dryRun) {
      for (const id of gone) this.rows.delete(id);
      for (const sha256 of orphanedBlobs) if (!this.orphans.has(sha256)) this.orphans.set(sha256, now);
    }
    return { incomplete, unreferenced, orphanedBlobs };
  }

  async orphansDue(now: number, graceMs: number): Promise<readonly string[]> {
    const due: string[] = [];
    for (const [sha256, since] of this.orphans) if (since < now - graceMs && !(await this.blobNamed(sha256))) due.push(sha256);
    return due;
  }

  async forgetOrphans(sha256s: readonly string[]): Promise<void> {
    for (const sha256 of sha256s) this.orphans.delete(sha256);
  }

  async blobNamed(sha256: string): Promise<boolean> {
    return [...this.rows.values()].some((row) => row.blob?.sha256 === sha256 || row.blob?.thumbnail?.sha256 === sha256);
  }
}

function blobsOf(row: UploadRow | undefined): string[] {
  if (row?.blob == null) return [];
  return row.blob.thumbnail ? [row.blob.sha256, row.blob.thumbnail.sha256] : [row.blob.sha256];
}

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

function world() {
  const clock = new FakeClock(1_700_000_000_000);
  const blobs = new MemoryBlobStore(clock);
  const storage = new FakeAttachmentStorage();
  const log = lines();
  const collector = new Collector({ storage: storage as unknown as AttachmentStorage, blobs, clock, graceMs: GRACE, log: createLogger('info', log.stream) });
  /** A finished upload, its bytes committed to the store as the upload path does. */
  const finished = async (id: string, content: string, options: { thumbnail?: string } = {}): Promise<string> => {
    const bytes = new TextEncoder().encode(content);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await blobs.createStaged(id);
    await blobs.appendStaged(id, 0, once(bytes), bytes.byteLength);
    await blobs.commitStaged(id, sha256);
    const thumbnail = options.thumbnail === undefined ? null : { ...(await blobs.putBlob(new TextEncoder().encode(options.thumbnail))), width: 1, height: 1 };
    const now = clock.now();
    storage.add(id, {
      createdAt: now,
      expiresAt: now + 24 * HOUR,
      completedAt: now,
      blob: { sha256, size: bytes.byteLength, mime: 'application/octet-stream', width: null, height: null, thumbnail: thumbnail && { sha256: thumbnail.sha256, width: 1, height: 1 } },
    });
    return sha256;
  };
  return { clock, blobs, storage, collector, log, finished };
}

const NOTHING: Omit<CollectionReport, 'dryRun'> = {
  incompleteUploads: { count: 0, bytes: 0 },
  unreferencedUploads: 0,
  orphanedBlobs: 0,
  blobsDeleted: { count: 0, bytes: 0 },
  strayStaged: { count: 0, bytes: 0 },
  strayBlobs: { count: 0, bytes: 0 },
};

describe('Collector', () => {
  it('removes an upload not finished before it expired, with its staged bytes, and keeps one still in time', async () => {
    const { clock, blobs, storage, collector } = world();
    for (const id of ['late', 'fresh']) {
      storage.add(id, { createdAt: clock.now(), expiresAt: clock.now() + (id === 'late' ? HOUR : 3 * HOUR) });
      await blobs.createStaged(id);
      await blobs.appendStaged(id, 0, once(new Uint8Array(id === 'late' ? 700 : 5)), 1000);
    }
    clock.time += 2 * HOUR;
    const report = await collector.run();
    assert.deepEqual(report, { ...NOTHING, dryRun: false, incompleteUploads: { count: 1, bytes: 700 } });
    assert.equal(await blobs.stagedSize('late'), undefined);
    assert.equal(await blobs.stagedSize('fresh'), 5);
    assert.deepEqual([...storage.rows.keys()], ['fresh']);
  });

  it('deletes the content of an upload no message referenced only a grace after the upload is collected', async () => {
    const { clock, blobs, storage, collector, finished } = world();
    const lonely = await finished('lonely', 'nobody sent me', { thumbnail: 'tiny' });
    const sent = await finished('sent', 'in a message');
    storage.referenced.add('sent');
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
    assert.equal(storage.orphans.size, 0, 'deleted orphans are forgotten');
  });

  it('keeps content another upload still names (deduplicated) when one of its uploads is collected', async () => {
    const { clock, blobs, storage, collector, finished } = world();
    const shared = await finished('first', 'same bytes');
    await finished('second', 'same bytes');
    storage.referenced.add('second');
    clock.time += GRACE + HOUR;
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false, unreferencedUploads: 1 });
    clock.time += 2 * GRACE;
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false });
    assert.equal(await blobs.blobSize(shared), 10);
  });

  it('spares an orphan past its grace whose content was just committed again by a new upload', async () => {
    const { clock, blobs, storage, collector, finished } = world();
    const content = await finished('old', 'popular');
    clock.time += GRACE + HOUR;
    await collector.run();
    clock.time += GRACE + HOUR;
    // A new upload of the same content is committed (deduplicated into the blob) but its row is not complete yet.
    await blobs.createStaged('new');
    await blobs.appendStaged('new', 0, once(new TextEncoder().encode('popular')), 7);
    storage.add('new', { createdAt: clock.now(), expiresAt: clock.now() + HOUR });
    assert.deepEqual(await blobs.commitStaged('new', content), { created: false });
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false });
    assert.equal(await blobs.blobSize(content), 7);
    assert.ok(storage.orphans.has(content), 'still an orphan until an upload completes with it');
  });

  it('deletes staged files whose upload row is gone, and keeps those of live uploads', async () => {
    const { clock, blobs, storage, collector } = world();
    storage.add('live', { createdAt: clock.now(), expiresAt: clock.now() + HOUR });
    for (const id of ['live', 'ghost']) {
      await blobs.createStaged(id);
      await blobs.appendStaged(id, 0, once(new Uint8Array(33)), 100);
    }
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false, strayStaged: { count: 1, bytes: 33 } });
    const staged: string[] = [];
    for await (const id of blobs.listStaged()) staged.push(id);
    assert.deepEqual(staged, ['live']);
  });

  it('deletes a blob no upload names once it is older than the grace, but never an orphan still in its grace', async () => {
    const { clock, blobs, storage, collector, finished } = world();
    const stray = await blobs.putBlob(new TextEncoder().encode('left by a crash'));
    assert.deepEqual(await collector.run(), { ...NOTHING, dryRun: false }, 'young: it may be an upload about to complete');
    const orphan = await finished('unsent', 'collected soon');
    clock.time += GRACE + HOUR;
    const report = await collector.run();
    assert.deepEqual(report, { ...NOTHING, dryRun: false, unreferencedUploads: 1, orphanedBlobs: 1, strayBlobs: { count: 1, bytes: 15 } });
    assert.equal(await blobs.blobSize(stray.sha256), undefined);
    assert.equal(await blobs.blobSize(orphan), 14, 'an old file, but an orphan for less than the grace');
    assert.equal(storage.orphans.size, 1);
  });

  it('reports in a dry run what a pass would remove, changing nothing', async () => {
    const { clock, blobs, storage, collector, finished } = world();
    const orphan = await finished('gone-before', 'orphan content');
    clock.time += GRACE + HOUR;
    await collector.run();
    storage.add('late', { createdAt: clock.now(), expiresAt: clock.now() + HOUR });
    await blobs.createStaged('late');
    await blobs.appendStaged('late', 0, once(new Uint8Array(50)), 100);
    await blobs.createStaged('ghost');
    await blobs.putBlob(new Uint8Array([1, 2, 3]));
    await finished('unsent', 'x');
    clock.time += GRACE + HOUR;
    const before = { rows: [...storage.rows.keys()], orphans: [...storage.orphans], stats: await blobs.stats() };
    const dry = await collector.run({ dryRun: true });
    assert.deepEqual(dry, {
      dryRun: true,
      incompleteUploads: { count: 1, bytes: 50 },
      unreferencedUploads: 1,
      orphanedBlobs: 1,
      blobsDeleted: { count: 1, bytes: 14 },
      strayStaged: { count: 1, bytes: 0 },
      strayBlobs: { count: 1, bytes: 3 },
    });
    assert.deepEqual({ rows: [...storage.rows.keys()], orphans: [...storage.orphans], stats: await blobs.stats() }, before);
    assert.deepEqual(await collector.run(), { ...dry, dryRun: false }, 'the real pass does what the dry run said');
    assert.equal(await blobs.blobSize(orphan), undefined);
  });

  it('runs on its timer, never two passes at once, and stop waits for the pass under way', async () => {
    const { clock, storage, collector } = world();
    let open: () => void = () => {};
    storage.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    collector.start(HOUR);
    clock.time += HOUR;
    assert.equal(storage.collectCalls, 1);
    clock.time += HOUR;
    clock.time += HOUR;
    assert.equal(storage.collectCalls, 1, 'ticks while a pass runs are skipped');
    let stopped = false;
    const stopping = collector.stop().then(() => {
      stopped = true;
    });
    await Promise.resolve();
    assert.equal(stopped, false, 'stop waits for the pass');
    open();
    await stopping;
    clock.time += 5 * HOUR;
    assert.equal(storage.collectCalls, 1, 'no pass after stop');
  });

  it('logs a failed pass on the timer and tries again at the next tick; run() itself rejects', async () => {
    const { clock, storage, collector, log } = world();
    let fail = true;
    const collect = storage.collect.bind(storage);
    storage.collect = async (now, grace, dryRun) => {
      if (fail) throw new Error('database away');
      return collect(now, grace, dryRun);
    };
    await assert.rejects(collector.run(), /database away/);
    collector.start(HOUR);
    clock.time += HOUR;
    await collector.stop();
    assert.match(log.text(), /collecting attachments failed/);
    fail = false;
    collector.start(HOUR);
    clock.time += HOUR;
    await collector.stop();
    assert.equal(storage.collectCalls, 1, 'the fake counts only passes that reached it');
  });
});
