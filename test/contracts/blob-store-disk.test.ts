import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { DiskBlobStore } from '../../src/storage/blobs/disk.js';
import { tempDir } from '../helpers/tmp.js';
import { blobStoreContract } from './blob-store.contract.js';

/** Every file and directory under `dir`, relative to it. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      out.push(relative(dir, path));
      if (entry.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return out.sort();
}

blobStoreContract('on disk', async () => {
  const dataDir = tempDir('chatd-blobs-');
  return {
    store: new DiskBlobStore(join(dataDir, 'blobs')),
    // Anything in the data directory but the store's root was made by a name that escaped it.
    escapes: async () => tree(dataDir).filter((path) => path !== 'blobs' && !path.startsWith('blobs/')),
  };
});

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

describe('DiskBlobStore', () => {
  it('lays blobs out by hash under sha256/<first two hex digits>/ and uploads under staging/, private to the server', async () => {
    const dataDir = tempDir('chatd-blobs-');
    const store = new DiskBlobStore(join(dataDir, 'blobs'));
    const data = new TextEncoder().encode('hello, attachments');
    const hash = createHash('sha256').update(data).digest('hex');
    await store.createStaged('up-1');
    await store.appendStaged('up-1', 0, once(data), 100);
    assert.deepEqual(tree(dataDir), ['blobs', 'blobs/staging', 'blobs/staging/up-1']);
    await store.commitStaged('up-1', hash);
    const thumbnail = await store.putBlob(new Uint8Array([7, 7, 7]));
    assert.deepEqual(
      tree(join(dataDir, 'blobs')),
      ['sha256', `sha256/${hash.slice(0, 2)}`, `sha256/${hash.slice(0, 2)}/${hash}`, `sha256/${thumbnail.sha256.slice(0, 2)}`, `sha256/${thumbnail.sha256.slice(0, 2)}/${thumbnail.sha256}`, 'staging', 'staging/up-1'].sort(),
      'no temporary file is left behind (the staged copy stays until the caller deletes it)',
    );
    assert.equal(statSync(join(dataDir, 'blobs', 'staging', 'up-1')).nlink, 2, 'a second name for the same file: nothing copied');
    await store.deleteStaged('up-1');
    assert.equal(statSync(join(dataDir, 'blobs', 'sha256', hash.slice(0, 2), hash)).nlink, 1);
    assert.equal(statSync(join(dataDir, 'blobs', 'sha256', hash.slice(0, 2), hash)).mode & 0o777, 0o600);
    assert.equal(statSync(join(dataDir, 'blobs', 'sha256')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dataDir, 'blobs', 'staging')).mode & 0o777, 0o700);
  });

  it('makes a blob young again when the same content is committed into it, so collection spares it', async () => {
    const root = join(tempDir('chatd-blobs-'), 'blobs');
    const store = new DiskBlobStore(root);
    const put = await store.putBlob(new Uint8Array([1, 2, 3]));
    const path = join(root, 'sha256', put.sha256.slice(0, 2), put.sha256);
    const longAgo = new Date(Date.now() - 7 * 86_400_000);
    await utimes(path, longAgo, longAgo);
    assert.ok(((await store.blobWrittenAt(put.sha256)) ?? 0) < Date.now() - 86_400_000);
    await store.createStaged('again');
    await store.appendStaged('again', 0, once(new Uint8Array([1, 2, 3])), 3);
    const before = Date.now();
    assert.deepEqual(await store.commitStaged('again', put.sha256), { created: false });
    assert.ok(((await store.blobWrittenAt(put.sha256)) ?? 0) >= before - 1_000);
    assert.equal(await store.blobWrittenAt('0'.repeat(64)), undefined);
  });

  it('lists a rewrite a crash left behind under its upload, and deleting the upload removes it', async () => {
    const root = join(tempDir('chatd-blobs-'), 'blobs');
    const store = new DiskBlobStore(root);
    await store.createStaged('crashed');
    writeFileSync(join(root, 'staging', 'gone.rewrite'), 'half a rewrite');
    writeFileSync(join(root, 'staging', '..odd name'), 'not an upload');
    const ids: string[] = [];
    for await (const id of store.listStaged()) ids.push(id);
    assert.deepEqual(ids.sort(), ['crashed', 'gone']);
    await store.deleteStaged('gone');
    assert.deepEqual(readdirSync(join(root, 'staging')).sort(), ['..odd name', 'crashed']);
  });

  it('ignores files in the blob tree that are not named by their hash', async () => {
    const root = join(tempDir('chatd-blobs-'), 'blobs');
    const store = new DiskBlobStore(root);
    const put = await store.putBlob(new Uint8Array([9]));
    const directory = join(root, 'sha256', put.sha256.slice(0, 2));
    writeFileSync(join(directory, `.${put.sha256}.tmp`), 'a put a crash cut');
    writeFileSync(join(directory, 'f'.repeat(64)), 'in the wrong directory');
    const blobs: string[] = [];
    for await (const blob of store.listBlobs()) blobs.push(blob.sha256);
    assert.deepEqual(blobs, [put.sha256]);
  });
});

describe('DiskBlobStore trash', () => {
  it('moves a blob to trash/ while it asks, and a sweep puts back what a stopped deletion left there when an upload names it, else deletes it', async () => {
    const root = join(tempDir('chatd-blobs-'), 'blobs');
    const store = new DiskBlobStore(root);
    const named = await store.putBlob(new TextEncoder().encode('still wanted'));
    const unnamed = await store.putBlob(new TextEncoder().encode('nobody wants me'));
    const young = await store.putBlob(new TextEncoder().encode('being decided'));
    // A process that stopped while asking: its deleteBlob never returns, the file stays in the trash.
    const stopped = (): Promise<boolean> => new Promise(() => {});
    void store.deleteBlob(named.sha256, stopped);
    void store.deleteBlob(unnamed.sha256, stopped);
    let moved = '';
    await store.deleteBlob(young.sha256, async () => {
      moved = readdirSync(join(root, 'trash')).find((name) => name.startsWith(young.sha256)) ?? '';
      return false;
    });
    assert.match(moved, new RegExp(`^${young.sha256}\\.\\d+\\.[0-9a-f]+$`), 'trash/<sha256>.<ms>.<random>');
    await new Promise<void>((resolve) => {
      const wait = (): void => {
        if (readdirSync(join(root, 'trash')).length === 2) resolve();
        else setImmediate(wait);
      };
      wait();
    });
    assert.equal(await store.blobSize(named.sha256), undefined, 'out of reach until swept');
    const asked: string[] = [];
    const isNamed = async (sha256: string): Promise<boolean> => {
      asked.push(sha256);
      return sha256 === named.sha256;
    };
    assert.deepEqual(await store.sweepTrash(Date.now() - 60_000, isNamed), { restored: 0, deleted: 0, deletedBytes: 0 }, 'a deletion that may still be asking is left to decide');
    assert.deepEqual(asked, []);
    assert.deepEqual(await store.sweepTrash(Date.now() + 1, isNamed), { restored: 1, deleted: 1, deletedBytes: 15 });
    assert.equal(await store.blobSize(named.sha256), 12);
    assert.equal(await store.blobSize(unnamed.sha256), undefined);
    assert.deepEqual(readdirSync(join(root, 'trash')), []);
    assert.deepEqual((await store.stats()).blobs, 2, 'the named one and the one kept');
  });
});
