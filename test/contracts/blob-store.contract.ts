import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { type BlobStore, BlobStoreError, type BlobStoreErrorCode } from '../../src/storage/ports/blobs.js';

export interface BlobStoreFixture {
  readonly store: BlobStore;
  /** Names another object would make under the store's root, for the disk store's traversal checks; [] for memory. */
  readonly escapes?: () => Promise<readonly string[]>;
}

const ID = 'AAAAAAAAAAAAAAAAAAAAAA';
const OTHER = 'BBBBBBBBBBBBBBBBBBBBB_';

function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function* chunksOf(data: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let at = 0; at < data.byteLength; at += size) yield data.subarray(at, Math.min(at + size, data.byteLength));
}

/** A source that gives `data` in chunks, then fails as a request body does when the client goes away. */
async function* failingAfter(data: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  yield* chunksOf(data, size);
  throw new Error('client went away');
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(Uint8Array.from(part));
  return new Uint8Array(Buffer.concat(parts));
}

async function list<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

async function rejectsWith(promise: Promise<unknown>, code: BlobStoreErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof BlobStoreError && error.code === code);
}

/**
 * What every BlobStore must do (src/storage/ports/blobs.ts): run against
 * the disk store and the memory store.
 */
export function blobStoreContract(name: string, make: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    it('stages an upload in pieces at their offsets, tells its size, and reads it back whole', async () => {
      const { store } = await make();
      assert.equal(await store.stagedSize(ID), undefined);
      await store.createStaged(ID);
      await store.createStaged(ID);
      assert.equal(await store.stagedSize(ID), 0, 'creating twice is harmless');
      const data = bytes(300_000);
      assert.equal(await store.appendStaged(ID, 0, chunksOf(data.subarray(0, 100_000), 7_000), 300_000), 100_000);
      await store.createStaged(ID);
      assert.equal(await store.stagedSize(ID), 100_000, 'creating again keeps what is staged');
      assert.equal(await store.appendStaged(ID, 100_000, chunksOf(data.subarray(100_000), 65_536), 300_000), 300_000);
      assert.deepEqual(await collect(store.readStaged(ID)), data);
      assert.equal(await store.appendStaged(ID, 300_000, chunksOf(new Uint8Array(0), 1), 300_000), 300_000, 'an empty body changes nothing');
    });

    it('refuses an append at another offset than the staged size, changing nothing', async () => {
      const { store } = await make();
      await store.createStaged(ID);
      await store.appendStaged(ID, 0, chunksOf(bytes(10), 10), 100);
      await rejectsWith(store.appendStaged(ID, 0, chunksOf(bytes(5), 5), 100), 'offset_mismatch');
      await rejectsWith(store.appendStaged(ID, 11, chunksOf(bytes(5), 5), 100), 'offset_mismatch');
      assert.equal(await store.stagedSize(ID), 10);
      await rejectsWith(store.appendStaged(OTHER, 0, chunksOf(bytes(5), 5), 100), 'not_found');
    });

    it('refuses a second append to the same upload while one is under way', async () => {
      const { store } = await make();
      await store.createStaged(ID);
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let firstChunkTaken: () => void = () => {};
      const taken = new Promise<void>((resolve) => {
        firstChunkTaken = resolve;
      });
      async function* slow(): AsyncIterable<Uint8Array> {
        yield bytes(4);
        firstChunkTaken();
        await gate;
        yield bytes(4, 2);
      }
      const first = store.appendStaged(ID, 0, slow(), 100);
      await taken;
      await rejectsWith(store.appendStaged(ID, 0, chunksOf(bytes(3), 3), 100), 'offset_mismatch');
      release();
      assert.equal(await first, 8);
    });

    it('stops at maxBytes with too_long, keeping the bytes that fit', async () => {
      const { store } = await make();
      await store.createStaged(ID);
      const data = bytes(1000);
      await store.appendStaged(ID, 0, chunksOf(data.subarray(0, 100), 100), 250);
      await rejectsWith(store.appendStaged(ID, 100, chunksOf(data.subarray(100), 60), 250), 'too_long');
      assert.equal(await store.stagedSize(ID), 250);
      assert.deepEqual(await collect(store.readStaged(ID)), data.subarray(0, 250));
      await rejectsWith(store.appendStaged(ID, 250, chunksOf(bytes(1), 1), 250), 'too_long');
      assert.equal(await store.stagedSize(ID), 250, 'a full upload takes no more');
    });

    it('reads no further from the source once maxBytes is reached', async () => {
      const { store } = await make();
      await store.createStaged(ID);
      let pulled = 0;
      async function* endless(): AsyncIterable<Uint8Array> {
        for (;;) {
          pulled += 1;
          yield bytes(10);
        }
      }
      await rejectsWith(store.appendStaged(ID, 0, endless(), 35), 'too_long');
      assert.equal(pulled, 4, 'the chunk that passed the limit was the last one read');
      assert.equal(await store.stagedSize(ID), 35);
    });

    it('keeps what arrived when the source fails, so the upload resumes from there', async () => {
      const { store } = await make();
      await store.createStaged(ID);
      const data = bytes(5000);
      await assert.rejects(store.appendStaged(ID, 0, failingAfter(data.subarray(0, 3000), 1000), 5000), /client went away/);
      assert.equal(await store.stagedSize(ID), 3000);
      assert.equal(await store.appendStaged(ID, 3000, chunksOf(data.subarray(3000), 512), 5000), 5000);
      assert.deepEqual(await collect(store.readStaged(ID)), data);
    });

    it('reads inclusive ranges of staged bytes and of blobs: first byte, last byte, middle, whole, past the end', async () => {
      const { store } = await make();
      const data = bytes(200_000, 3);
      await store.createStaged(ID);
      await store.appendStaged(ID, 0, chunksOf(data, 50_000), data.byteLength);
      assert.deepEqual(await collect(store.readStaged(ID, { start: 10, end: 19 })), data.subarray(10, 20));
      const hash = sha(data);
      await store.commitStaged(ID, hash);
      const last = data.byteLength - 1;
      assert.deepEqual(await collect(store.readBlob(hash, { start: 0, end: 0 })), data.subarray(0, 1));
      assert.deepEqual(await collect(store.readBlob(hash, { start: last, end: last })), data.subarray(last));
      assert.deepEqual(await collect(store.readBlob(hash, { start: 70_000, end: 140_000 })), data.subarray(70_000, 140_001));
      assert.deepEqual(await collect(store.readBlob(hash, { start: 0, end: last })), data);
      assert.deepEqual(await collect(store.readBlob(hash)), data);
      assert.deepEqual(await collect(store.readBlob(hash, { start: 199_990, end: 300_000 })), data.subarray(199_990), 'an end past the blob stops at its end');
      await assert.rejects(collect(store.readBlob(hash, { start: 5, end: 4 })), RangeError);
    });

    it('commits staged bytes as a blob named by their hash, and the same content twice is stored once', async () => {
      const { store } = await make();
      const data = bytes(10_000, 4);
      const hash = sha(data);
      assert.equal(await store.blobSize(hash), undefined);
      await store.createStaged(ID);
      await store.appendStaged(ID, 0, chunksOf(data, 4096), 10_000);
      assert.deepEqual(await store.commitStaged(ID, hash), { created: true });
      assert.equal(await store.stagedSize(ID), 10_000, 'the staged copy is kept: the caller deletes it once its row names the blob');
      await store.deleteStaged(ID);
      assert.deepEqual(await collect(store.readBlob(hash)), data, 'deleting the staged copy leaves the blob');
      assert.equal(await store.blobSize(hash), 10_000);
      await store.createStaged(OTHER);
      await store.appendStaged(OTHER, 0, chunksOf(data, 1000), 10_000);
      assert.deepEqual(await store.commitStaged(OTHER, hash), { created: false });
      assert.equal(await store.stagedSize(OTHER), 10_000, 'the second copy is kept: the caller deletes it once its row names the blob');
      assert.deepEqual(await list(store.listBlobs()), [{ sha256: hash, size: 10_000 }]);
      await store.deleteBlob(hash);
      assert.deepEqual(await store.commitStaged(OTHER, hash), { created: true }, 'the kept copy can be committed again when the blob went meanwhile');
      await store.deleteStaged(OTHER);
      assert.equal(await store.blobSize(hash), 10_000);
      assert.deepEqual(await collect(store.readBlob(hash)), data);
      await rejectsWith(store.commitStaged(ID, hash), 'not_found');
      await rejectsWith(store.commitStaged(OTHER, hash), 'not_found');
    });

    it('deletes a blob only when the last look, taken with the blob out of reach, says no upload names it', async () => {
      const { store } = await make();
      const data = bytes(4000, 6);
      const put = await store.putBlob(data);
      const seen: Array<number | undefined> = [];
      const look = (answer: boolean) => async () => {
        seen.push(await store.blobSize(put.sha256));
        return answer;
      };
      assert.equal(await store.deleteBlob(put.sha256, look(false)), 'kept');
      assert.deepEqual(seen, [undefined], 'the blob is out of reach while the question is asked');
      assert.deepEqual(await collect(store.readBlob(put.sha256)), data, 'put back whole');
      assert.deepEqual(await list(store.listBlobs()), [{ sha256: put.sha256, size: 4000 }]);
      await assert.rejects(
        store.deleteBlob(put.sha256, async () => {
          throw new Error('database away');
        }),
        /database away/,
      );
      assert.equal(await store.blobSize(put.sha256), 4000, 'a failed question puts the blob back');
      // A new copy of the same content arrives while the question is asked (an upload finishing): no harm either way.
      assert.equal(
        await store.deleteBlob(put.sha256, async () => {
          await store.putBlob(data);
          return false;
        }),
        'kept',
      );
      assert.deepEqual(await collect(store.readBlob(put.sha256)), data);
      assert.equal(await store.deleteBlob(put.sha256, look(true)), 'deleted');
      assert.equal(await store.blobSize(put.sha256), undefined);
      assert.equal(await store.deleteBlob(put.sha256, look(true)), 'missing');
      assert.deepEqual(await list(store.listBlobs()), []);
      assert.deepEqual(await store.sweepTrash(Number.MAX_SAFE_INTEGER, async () => true), { restored: 0, deleted: 0, deletedBytes: 0 }, 'nothing was left out of reach');
    });

    it('rewrites staged bytes in place before they are committed', async () => {
      const { store } = await make();
      await store.createStaged(ID);
      await store.appendStaged(ID, 0, chunksOf(bytes(5000), 1000), 5000);
      const smaller = bytes(1200, 9);
      assert.equal(await store.rewriteStaged(ID, chunksOf(smaller, 500)), 1200);
      assert.equal(await store.stagedSize(ID), 1200);
      assert.deepEqual(await collect(store.readStaged(ID)), smaller);
      assert.deepEqual(await list(store.listStaged()), [ID]);
      await rejectsWith(store.rewriteStaged(OTHER, chunksOf(smaller, 500)), 'not_found');
    });

    it('puts small content under its own hash, once', async () => {
      const { store } = await make();
      const thumbnail = bytes(777, 5);
      const put = await store.putBlob(thumbnail);
      assert.deepEqual(put, { sha256: sha(thumbnail), size: 777 });
      assert.deepEqual(await store.putBlob(thumbnail), put);
      assert.deepEqual(await collect(store.readBlob(put.sha256)), thumbnail);
      assert.deepEqual(await list(store.listBlobs()), [{ sha256: put.sha256, size: 777 }]);
    });

    it('deletes blobs and staged uploads, and deleting what is not there is harmless', async () => {
      const { store } = await make();
      const put = await store.putBlob(bytes(100));
      assert.equal(await store.deleteBlob(put.sha256), 'deleted');
      assert.equal(await store.deleteBlob(put.sha256), 'missing');
      assert.equal(await store.blobSize(put.sha256), undefined);
      await rejectsWith(collect(store.readBlob(put.sha256)), 'not_found');
      await store.createStaged(ID);
      await store.deleteStaged(ID);
      await store.deleteStaged(ID);
      assert.equal(await store.stagedSize(ID), undefined);
      await rejectsWith(collect(store.readStaged(ID)), 'not_found');
    });

    it('lists blobs and staged uploads, and counts them with their bytes', async () => {
      const { store } = await make();
      assert.deepEqual(await store.stats(), { blobs: 0, blobBytes: 0, staged: 0, stagedBytes: 0 });
      const a = await store.putBlob(bytes(100, 1));
      const b = await store.putBlob(bytes(250, 2));
      await store.createStaged(ID);
      await store.appendStaged(ID, 0, chunksOf(bytes(40), 40), 100);
      await store.createStaged(OTHER);
      const blobs = await list(store.listBlobs());
      assert.deepEqual(
        blobs.sort((x, y) => x.sha256.localeCompare(y.sha256)),
        [
          { sha256: a.sha256, size: 100 },
          { sha256: b.sha256, size: 250 },
        ].sort((x, y) => x.sha256.localeCompare(y.sha256)),
      );
      assert.deepEqual((await list(store.listStaged())).sort(), [ID, OTHER].sort());
      assert.deepEqual(await store.stats(), { blobs: 2, blobBytes: 350, staged: 2, stagedBytes: 40 });
    });

    it('refuses hashes that are not 64 lowercase hex digits, and upload ids that are not base64url', async () => {
      const { store, escapes } = await make();
      const good = sha(bytes(1));
      const badHashes = ['', '..', '../../etc/passwd', good.toUpperCase(), `${good}0`, good.slice(1), `${good.slice(0, 62)}/.`, `../${good.slice(3)}`];
      for (const hash of badHashes) {
        await rejectsWith(store.blobSize(hash), 'invalid_hash');
        await rejectsWith(collect(store.readBlob(hash)), 'invalid_hash');
        await rejectsWith(store.deleteBlob(hash), 'invalid_hash');
      }
      await store.createStaged(ID);
      await rejectsWith(store.commitStaged(ID, '../../x'), 'invalid_hash');
      assert.equal(await store.stagedSize(ID), 0, 'a refused commit leaves the upload staged');
      const badIds = ['', '.', '..', '../x', '../../sha256', 'a/b', 'a\\b', 'a\u0000b', 'x.rewrite', 'A'.repeat(129), 'a b'];
      for (const id of badIds) {
        await rejectsWith(store.createStaged(id), 'not_found');
        await rejectsWith(store.stagedSize(id), 'not_found');
        await rejectsWith(store.appendStaged(id, 0, chunksOf(bytes(1), 1), 10), 'not_found');
        await rejectsWith(collect(store.readStaged(id)), 'not_found');
        await rejectsWith(store.deleteStaged(id), 'not_found');
        await rejectsWith(store.commitStaged(id, good), 'not_found');
      }
      assert.deepEqual(await list(store.listStaged()), [ID]);
      if (escapes !== undefined) assert.deepEqual(await escapes(), [], 'nothing was made outside the store');
    });
  });
}
