import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { ATTACHMENTS_MARKER, readSealedAttachments, sealedWithAttachments } from '../../src/client/attachment-types.js';
import { ClientError } from '../../src/client/errors.js';
import { CHUNK_OVERHEAD_BYTES, EncryptingReader, FileDecryptor, HEADER_BYTES, PLAIN_CHUNK_BYTES, encryptedSize } from '../../src/client/file-crypto.js';
import { portableSha256, toHex } from '../../src/client/sha256.js';
import { type Sodium, loadSodium } from '../../src/client/sodium.js';

/** The encrypted attachment format (docs/attachments.md, "Encrypted attachments"). */

let sodium: Sodium;
before(async () => {
  sodium = await loadSodium();
});

function source(bytes: Uint8Array) {
  return { size: bytes.length, read: async (offset: number, length: number) => bytes.subarray(offset, offset + length) };
}

/** Encrypts `plain`, read in pieces of `readBytes`; the ciphertext, its key and hash. */
async function encrypt(plain: Uint8Array, readBytes = 100_000): Promise<{ file: Uint8Array; key: Uint8Array; sha256: string }> {
  const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
  const reader = new EncryptingReader(sodium, source(plain), key, portableSha256);
  const parts: Buffer[] = [];
  for (;;) {
    const part = await reader.read(readBytes);
    if (part.length === 0) break;
    parts.push(Buffer.from(part));
  }
  const file = new Uint8Array(Buffer.concat(parts));
  assert.equal(file.length, reader.size, 'the size announced before encrypting is the size made');
  return { file, key, sha256: reader.sha256() };
}

function decrypt(file: Uint8Array, key: Uint8Array, expected: { size: number; sha256: string }, pieceBytes = 7_000): Uint8Array {
  const decryptor = new FileDecryptor(sodium, key, expected, portableSha256);
  for (let at = 0; at < file.length; at += pieceBytes) decryptor.push(file.slice(at, at + pieceBytes));
  return decryptor.finish();
}

function corrupt(what: () => unknown, why: RegExp): void {
  assert.throws(what, (error: unknown) => error instanceof ClientError && error.code === 'attachment_corrupt' && why.test(error.message));
}

describe('encrypted attachments: the file format', () => {
  it('is the 24-byte header, then 64 KiB plaintext chunks each 17 bytes longer, the last one final', async () => {
    for (const size of [0, 1, PLAIN_CHUNK_BYTES - 1, PLAIN_CHUNK_BYTES, PLAIN_CHUNK_BYTES + 1, 3 * PLAIN_CHUNK_BYTES + 5]) {
      const plain = new Uint8Array(randomBytes(size));
      const { file, key, sha256 } = await encrypt(plain);
      const chunks = Math.max(1, Math.ceil(size / PLAIN_CHUNK_BYTES));
      assert.equal(file.length, HEADER_BYTES + size + chunks * CHUNK_OVERHEAD_BYTES, `size ${size}`);
      assert.equal(encryptedSize(size), file.length);
      assert.equal(sha256, createHash('sha256').update(file).digest('hex'), 'the hash is of the ciphertext, header included');
      // Read with libsodium directly, chunk by chunk: the format is secretstream's, nothing of ours.
      const state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(file.subarray(0, HEADER_BYTES), key);
      const tags: number[] = [];
      for (let at = HEADER_BYTES; at < file.length; at += PLAIN_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES) {
        const opened = sodium.crypto_secretstream_xchacha20poly1305_pull(state, file.subarray(at, at + PLAIN_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES), null);
        assert.ok(opened, 'each chunk opens');
        tags.push(opened.tag);
      }
      assert.deepEqual(tags, [...Array(chunks - 1).fill(sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE), sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL]);
      assert.deepEqual(decrypt(file, key, { size, sha256 }), plain, `round trip of ${size} bytes`);
    }
  });

  it('uses a fresh key and header per file: the same plaintext twice gives two unrelated ciphertexts', async () => {
    const plain = new Uint8Array(randomBytes(1000));
    const a = await encrypt(plain);
    const b = await encrypt(plain);
    assert.notDeepEqual(a.key, b.key);
    assert.notEqual(a.sha256, b.sha256);
  });

  it('refuses a file with one altered byte in a chunk, even when the stated hash is the altered file\'s', async () => {
    const plain = new Uint8Array(randomBytes(2 * PLAIN_CHUNK_BYTES + 10));
    const { file, key } = await encrypt(plain);
    const tampered = file.slice();
    tampered[HEADER_BYTES + PLAIN_CHUNK_BYTES + 100] = (tampered[HEADER_BYTES + PLAIN_CHUNK_BYTES + 100] as number) ^ 1;
    const sha256 = createHash('sha256').update(tampered).digest('hex');
    corrupt(() => decrypt(tampered, key, { size: plain.length, sha256 }), /does not decrypt/);
  });

  it('refuses a file whose hash is not the one stated (a server swapping in another file encrypted under the same key cannot pass)', async () => {
    const plain = new Uint8Array(randomBytes(5000));
    const { file, key } = await encrypt(plain);
    corrupt(() => decrypt(file, key, { size: plain.length, sha256: '0'.repeat(64) }), /SHA-256/);
  });

  it('refuses a truncated file: cut inside a chunk, cut at a chunk boundary (final chunk dropped), or only a header', async () => {
    const plain = new Uint8Array(randomBytes(2 * PLAIN_CHUNK_BYTES + 10));
    const { file, key } = await encrypt(plain);
    const hashOf = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
    const atBoundary = file.subarray(0, HEADER_BYTES + 2 * (PLAIN_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES));
    corrupt(() => decrypt(atBoundary, key, { size: plain.length, sha256: hashOf(atBoundary) }), /truncated/);
    const inside = file.subarray(0, file.length - 5);
    corrupt(() => decrypt(inside, key, { size: plain.length, sha256: hashOf(inside) }), /does not decrypt/);
    const header = file.subarray(0, 10);
    corrupt(() => decrypt(header, key, { size: plain.length, sha256: hashOf(header) }), /shorter than its header/);
  });

  it('refuses bytes after the final chunk, a reordered file and another key', async () => {
    const plain = new Uint8Array(randomBytes(PLAIN_CHUNK_BYTES * 2));
    const { file, key, sha256 } = await encrypt(plain);
    const longer = new Uint8Array([...file, ...file.subarray(HEADER_BYTES, HEADER_BYTES + 40)]);
    corrupt(() => decrypt(longer, key, { size: plain.length, sha256: createHash('sha256').update(longer).digest('hex') }), /after its final chunk|does not decrypt/);
    const chunk = PLAIN_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES;
    const swapped = new Uint8Array([...file.subarray(0, HEADER_BYTES), ...file.subarray(HEADER_BYTES + chunk), ...file.subarray(HEADER_BYTES, HEADER_BYTES + chunk)]);
    corrupt(() => decrypt(swapped, key, { size: plain.length, sha256: createHash('sha256').update(swapped).digest('hex') }), /does not decrypt/);
    corrupt(() => decrypt(file, sodium.crypto_secretstream_xchacha20poly1305_keygen(), { size: plain.length, sha256 }), /does not decrypt/);
  });

  it('refuses a file whose plaintext size is not the one the message states', async () => {
    const plain = new Uint8Array(randomBytes(3000));
    const { file, key, sha256 } = await encrypt(plain);
    corrupt(() => decrypt(file, key, { size: 2999, sha256 }), /more than/);
    corrupt(() => decrypt(file, key, { size: 3001, sha256 }), /holds 3000 bytes/);
  });

  it('hashes with a portable SHA-256 equal to node:crypto\'s, fed in any pieces', () => {
    for (const size of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 10_000, 300_001]) {
      const bytes = randomBytes(size);
      const hash = portableSha256();
      for (let at = 0; at < size; at += 37 + (at % 11)) hash.update(bytes.subarray(at, at + 37 + (at % 11)));
      assert.equal(toHex(hash.digest()), createHash('sha256').update(bytes).digest('hex'), `size ${size}`);
    }
  });
});

describe('encrypted attachments: what the envelope seals', () => {
  const info = { id: 'u1', key: 'a2V5', sha256: 'ab'.repeat(32), size: 10, name: 'cat.jpg', mime: 'image/jpeg', width: 4, height: 3 };

  it('is the app\'s body and the files\' descriptions under a marker, read back as attachments with their keys', () => {
    const sealed = sealedWithAttachments({ text: 'look' }, [{ ...info, thumbnail: { id: 'u2', key: 'a2V5', sha256: 'cd'.repeat(32), size: 5, width: 2, height: 1, mime: 'image/jpeg' } }]);
    assert.equal(sealed.chatd, ATTACHMENTS_MARKER);
    const read = readSealedAttachments(JSON.parse(JSON.stringify(sealed)));
    assert.deepEqual(read?.body, { text: 'look' });
    assert.equal(read?.attachments.length, 1);
    assert.equal(read?.attachments[0]?.name, 'cat.jpg');
    assert.deepEqual(read?.attachments[0]?.thumbnail, { width: 2, height: 1 });
    assert.equal(read?.attachments[0]?.encrypted?.key, 'a2V5');
  });

  it('leaves an app body without the marker alone, and drops a malformed description', () => {
    assert.equal(readSealedAttachments({ body: 1, attachments: [info] }), undefined);
    assert.equal(readSealedAttachments({ text: 'hi' }), undefined);
    const read = readSealedAttachments({ chatd: ATTACHMENTS_MARKER, body: null, attachments: [info, { ...info, sha256: 'nope' }, { ...info, size: -1 }] });
    assert.equal(read?.attachments.length, 1);
    assert.equal(read?.body, null);
  });
});
