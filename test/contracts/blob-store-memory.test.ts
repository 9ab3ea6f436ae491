import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBlobStore } from '../../src/storage/blobs/memory.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { blobStoreContract } from './blob-store.contract.js';

blobStoreContract('in memory', async () => ({ store: new MemoryBlobStore() }));

describe('MemoryBlobStore', () => {
  it('dates a blob when it is written and again when the same content is committed or put', async () => {
    const clock = new FakeClock();
    const store = new MemoryBlobStore(clock);
    const put = await store.putBlob(new Uint8Array([1, 2, 3]));
    assert.equal(await store.blobWrittenAt(put.sha256), clock.now());
    clock.time += 5_000;
    await store.createStaged('up1');
    await store.appendStaged('up1', 0, (async function* () {
      yield new Uint8Array([1, 2, 3]);
    })(), 3);
    assert.deepEqual(await store.commitStaged('up1', put.sha256), { created: false });
    assert.equal(await store.blobWrittenAt(put.sha256), clock.now());
  });
});
