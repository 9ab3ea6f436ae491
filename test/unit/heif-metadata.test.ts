import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import {
  type HeifStripOutcome,
  blankRanges,
  locateHeifMetadata,
  stripHeifMetadata,
  stripHeifMetadataInPlace,
} from '../../src/services/attachments/heif-metadata.js';
import { sniff } from '../../src/services/attachments/sniff.js';
import type { ByteRange } from '../../src/storage/ports/blobs.js';
import {
  GPS_XMP,
  type SyntheticItem,
  type SyntheticLayout,
  avifWithLocation,
  changedBytes,
  decodedSize,
  syntheticHeif,
  undecodableHeic,
  withMajorBrand,
} from '../helpers/heif.js';

/** The GPS latitude as the EXIF writes it: three rationals 48/1 51/1 2400/100, in the byte order the TIFF header names. */
function latitudeBytes(exif: Uint8Array): Buffer {
  const tiff = Buffer.from(exif).indexOf('II*\0') !== -1 ? 'II' : 'MM';
  const values = [48, 1, 51, 1, 2400, 100];
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((value, i) => (tiff === 'II' ? bytes.writeUInt32LE(value, i * 4) : bytes.writeUInt32BE(value, i * 4)));
  return bytes;
}

function zeros(bytes: Uint8Array): boolean {
  return bytes.every((byte) => byte === 0);
}

function unparsed(outcome: HeifStripOutcome): boolean {
  return outcome.kind === 'unparsed';
}

/** Strips a copy; the copy must be unchanged when the answer is 'unparsed'. */
async function stripCopy(bytes: Uint8Array): Promise<{ outcome: HeifStripOutcome; bytes: Buffer }> {
  const copy = Buffer.from(bytes);
  const outcome = await stripHeifMetadataInPlace(copy);
  if (outcome.kind === 'unparsed') assert.ok(copy.equals(bytes), `unparsed (${outcome.reason}) yet changed`);
  return { outcome, bytes: copy };
}

const EXIF_PAYLOAD = Buffer.concat([Buffer.from([0, 0, 0, 6]), Buffer.from('Exif\0\0MM\0*'), Buffer.from('GPS 48.8567N 2.3508E')]);
const XMP_PAYLOAD = Buffer.from(GPS_XMP);
const PICTURE = Buffer.alloc(200, 0xab);

function items(overrides: Partial<Record<'picture' | 'exif' | 'xmp', Partial<SyntheticItem>>> = {}): SyntheticItem[] {
  return [
    { id: 1, type: 'hvc1', data: PICTURE, ...overrides.picture },
    { id: 2, type: 'Exif', data: EXIF_PAYLOAD, ...overrides.exif },
    { id: 3, type: 'mime', contentType: 'application/rdf+xml', data: XMP_PAYLOAD, ...overrides.xmp },
  ];
}

/** Strips a synthetic file and checks that exactly the Exif and XMP items' bytes became zeros. */
async function assertStripsExactly(list: readonly SyntheticItem[], layout: SyntheticLayout = {}, blanked: readonly number[] = [2, 3]): Promise<void> {
  const file = syntheticHeif(list, layout);
  const { outcome, bytes } = await stripCopy(file.bytes);
  assert.deepEqual(outcome, { kind: 'stripped', items: blanked.length }, JSON.stringify(layout));
  const expected = Buffer.from(file.bytes);
  for (const id of blanked) for (const range of file.extents.get(id) ?? []) expected.fill(0, range.start, range.end + 1);
  assert.ok(bytes.equals(expected), `only the metadata items are zeroed (${JSON.stringify(layout)})`);
}

describe('HEIF metadata stripping', () => {
  let avif: Buffer;
  let exif: Buffer;
  before(async () => {
    avif = await avifWithLocation(320, 240);
    const metadata = await sharp(avif).metadata();
    assert.ok(metadata.exif && metadata.xmp, 'the test AVIF has EXIF and XMP');
    exif = metadata.exif;
  });

  it('zeroes the EXIF (GPS) and XMP items of an AVIF sharp wrote, keeping its length and its picture', async () => {
    const latitude = latitudeBytes(exif);
    assert.notEqual(avif.indexOf(latitude), -1, 'the GPS latitude is in the file');
    const exifAt = avif.indexOf(exif);
    const xmpAt = avif.indexOf('exif:GPSLatitude="48,51.4N"');
    assert.ok(exifAt > 0 && xmpAt > 0);
    const before = await decodedSize(avif);

    const { outcome, bytes } = await stripCopy(avif);

    assert.deepEqual(outcome, { kind: 'stripped', items: 2 });
    assert.equal(bytes.length, avif.length);
    assert.ok(zeros(bytes.subarray(exifAt, exifAt + exif.length)), 'the Exif payload is all zeros');
    assert.equal(bytes.indexOf(latitude), -1, 'no GPS latitude');
    assert.equal(bytes.indexOf('HeifTestCam'), -1);
    assert.equal(bytes.indexOf('GPSLatitude'), -1, 'no XMP position');
    const changed = changedBytes(avif, bytes);
    assert.ok(changed.allZero, 'every changed byte is a zero');
    assert.ok(changed.count <= exif.length + GPS_XMP.length + 16, `${changed.count} bytes changed: the two items and nothing else`);
    assert.deepEqual(await decodedSize(bytes), before, 'sharp decodes it, same width and height');
    assert.deepEqual(await sharp(bytes).raw().toBuffer(), await sharp(avif).raw().toBuffer(), 'the same pixels');
  });

  it('handles the same file relabelled HEIC (major brand heic), which sniff calls image/heic', async () => {
    const heic = withMajorBrand(avif, 'heic');
    assert.equal(sniff(heic), 'image/heic');
    const { outcome, bytes } = await stripCopy(heic);
    assert.deepEqual(outcome, { kind: 'stripped', items: 2 });
    assert.equal(bytes.indexOf(latitudeBytes(exif)), -1);
    assert.deepEqual(await decodedSize(bytes), { width: 320, height: 240 });
  });

  it('handles a HEIC sharp cannot decode (an hvc1 image item): what the finish pipeline meets for an iPhone photo', async () => {
    const heic = undecodableHeic(avif);
    await assert.rejects(sharp(heic).raw().toBuffer(), 'sharp cannot read it');
    const { outcome, bytes } = await stripCopy(heic);
    assert.deepEqual(outcome, { kind: 'stripped', items: 2 });
    assert.equal(bytes.indexOf(latitudeBytes(exif)), -1);
    assert.equal(bytes.indexOf('GPSLatitude'), -1);
  });

  it('blanks nothing and says 0 for a HEIF without metadata items', async () => {
    const plain = await sharp({ create: { width: 16, height: 16, channels: 3, background: 'red' } }).avif().toBuffer();
    const { outcome, bytes } = await stripCopy(plain);
    assert.deepEqual(outcome, { kind: 'stripped', items: 0 });
    assert.ok(bytes.equals(plain));
  });

  it('strips staged bytes reading only the header in ranges, then rewriting them as a stream with the same result', async () => {
    const reads: ByteRange[] = [];
    let rewritten: Buffer | undefined;
    const outcome = await stripHeifMetadata({
      size: avif.length,
      async *read(range) {
        reads.push(range);
        // Small chunks, so that blanked ranges cross chunk boundaries.
        for (let i = range.start; i <= range.end; i += 7) yield avif.subarray(i, Math.min(i + 7, range.end + 1));
      },
      async rewrite(chunks) {
        const parts: Uint8Array[] = [];
        for await (const chunk of chunks) parts.push(chunk);
        rewritten = Buffer.concat(parts);
        return rewritten.length;
      },
    });
    assert.deepEqual(outcome, { kind: 'stripped', items: 2 });
    const expected = Buffer.from(avif);
    await stripHeifMetadataInPlace(expected);
    assert.ok(rewritten?.equals(expected), 'the streamed rewrite equals the in-place strip');
    const header = reads.slice(0, -1);
    assert.deepEqual(reads.at(-1), { start: 0, end: avif.length - 1 }, 'the last read is the rewrite');
    const headerBytes = header.reduce((sum, range) => sum + range.end - range.start + 1, 0);
    const metaEnd = avif.indexOf('mdat') - 4;
    assert.ok(header.every((range) => range.end < metaEnd + 32), 'nothing past the mdat header is read before the rewrite');
    assert.ok(headerBytes < metaEnd + 100 && headerBytes < avif.length / 4, `${headerBytes} bytes read to locate the metadata`);
  });

  it('does not rewrite a file that has nothing to blank, nor one it cannot parse', async () => {
    const plain = await sharp({ create: { width: 16, height: 16, channels: 3, background: 'red' } }).avif().toBuffer();
    for (const bytes of [plain, avif.subarray(0, 100)]) {
      let rewrites = 0;
      await stripHeifMetadata({
        size: bytes.length,
        async *read(range) {
          yield bytes.subarray(range.start, range.end + 1);
        },
        async rewrite() {
          rewrites++;
          return 0;
        },
      });
      assert.equal(rewrites, 0);
    }
  });

  it('answers unparsed, changing nothing, for the file truncated at every byte of its header and all through its mdat', async () => {
    // Every byte up to past the mdat header covers every box boundary; within mdat, every 499th byte and the last.
    const header = avif.indexOf('mdat') + 64;
    const cuts = [...Array.from({ length: header }, (_, i) => i), ...Array.from({ length: Math.floor((avif.length - header) / 499) }, (_, i) => header + i * 499), avif.length - 1];
    for (const cut of cuts) {
      const { outcome } = await stripCopy(avif.subarray(0, cut));
      assert.ok(unparsed(outcome), `cut at ${cut}: ${JSON.stringify(outcome)}`);
    }
  });

  it('answers unparsed for a box size of 2^32-1 (meta, iloc, iinf, mdat) and for sizes smaller than a header', async () => {
    for (const type of ['meta', 'iloc', 'iinf', 'mdat', 'ftyp']) {
      for (const size of [0xffffffff, 7, 0]) {
        if (size === 0 && type === 'mdat') continue; // size 0 is "to the end of the file", valid for the last top-level box
        const copy = Buffer.from(avif);
        copy.writeUInt32BE(size, copy.indexOf(type) - 4);
        assert.ok(unparsed((await stripCopy(copy)).outcome), `${type} size ${size}`);
      }
    }
  });

  it('answers unparsed for an iloc extent past the end of the file, and for a 64-bit mdat size past it', async () => {
    const { bytes: past } = syntheticHeif(items());
    assert.ok(unparsed((await stripCopy(past.subarray(0, past.length - 1))).outcome), 'XMP extent past the end');
    const large = syntheticHeif(items(), { largeMdat: true });
    assert.ok((await stripCopy(large.bytes)).outcome.kind === 'stripped', 'a 64-bit mdat size that fits');
    const copy = Buffer.from(large.bytes);
    copy.writeBigUInt64BE(2n ** 40n, large.mdatStart + 8);
    assert.ok(unparsed((await stripCopy(copy)).outcome), '64-bit size past the file');
    copy.writeBigUInt64BE(2n ** 63n, large.mdatStart + 8);
    assert.ok(unparsed((await stripCopy(copy)).outcome), '64-bit size past 2^53');
  });

  it('reads iloc versions 0, 1 and 2 with every field size, base offsets, extent indexes, infe version 3 and split extents', async () => {
    for (const ilocVersion of [0, 1, 2]) {
      for (const offsetSize of [4, 8]) {
        for (const lengthSize of [4, 8]) {
          for (const baseOffsetSize of [0, 4, 8]) {
            const indexSize = ilocVersion === 0 ? 0 : offsetSize;
            await assertStripsExactly(items({ exif: { splitAt: 5 } }), { ilocVersion, offsetSize, lengthSize, baseOffsetSize, indexSize });
          }
        }
      }
    }
    await assertStripsExactly(items(), { ilocVersion: 2, infeVersion: 3 });
    await assertStripsExactly(items(), { largeMdat: true });
    await assertStripsExactly(items(), { openMdat: true });
    await assertStripsExactly(items({ picture: { constructionMethod: 1 } }), {}, [2, 3]);
  });

  it('blanks XMP whatever the case and parameters of its content type, and leaves other mime items alone', async () => {
    await assertStripsExactly(items({ xmp: { contentType: 'Application/RDF+XML; charset=utf-8' } }));
    await assertStripsExactly(items({ xmp: { contentType: 'image/jpeg' } }), {}, [2]);
  });

  it('answers unparsed for what it does not accept', async () => {
    const refused: [string, Buffer][] = [
      ['iloc version 3', syntheticHeif(items(), { ilocVersion: 3 }).bytes],
      ['offset_size 2', syntheticHeif(items(), { offsetSize: 2 }).bytes],
      ['index_size 1', syntheticHeif(items(), { indexSize: 1 }).bytes],
      ['Exif built from other items (construction_method 1)', syntheticHeif(items({ exif: { constructionMethod: 1 } })).bytes],
      ['Exif in idat (construction_method 2)', syntheticHeif(items({ xmp: { constructionMethod: 2 } })).bytes],
      ['Exif in another file', syntheticHeif(items({ exif: { dataReference: 1 } })).bytes],
      ['infe version 4', syntheticHeif(items(), { infeVersion: 4 }).bytes],
    ];
    const base = syntheticHeif(items());
    const patched = (edit: (copy: Buffer) => void): Buffer => {
      const copy = Buffer.from(base.bytes);
      edit(copy);
      return copy;
    };
    const exifExtent = (base.extents.get(2) ?? [])[0] as ByteRange;
    // iloc v1, sizes 4/4, no base offset: the Exif entry (second) holds its offset after id, method, reference, count.
    const ilocAt = base.bytes.indexOf('iloc') - 4;
    const entries = ilocAt + 8 + 4 + 2 + 2;
    const entry = (index: number) => entries + index * (2 + 2 + 2 + 2 + 8);
    const exifOffsetAt = entry(1) + 8;
    refused.push(
      ['an extent inside the meta box', patched((copy) => copy.writeUInt32BE(base.metaStart + 20, exifOffsetAt))],
      ['an extent inside ftyp', patched((copy) => copy.writeUInt32BE(4, exifOffsetAt))],
      ['an extent over the mdat header', patched((copy) => copy.writeUInt32BE(base.mdatStart + 2, exifOffsetAt))],
      ['an extent past the end', patched((copy) => copy.writeUInt32BE(base.bytes.length - 3, exifOffsetAt))],
      ['an extent of length 0', patched((copy) => copy.writeUInt32BE(0, exifOffsetAt + 4))],
      ['an Exif item iloc does not list', patched((copy) => copy.writeUInt16BE(9, entry(1)))],
      ['an Exif item located twice in iloc', patched((copy) => copy.writeUInt16BE(2, entry(0)))],
      ['iinf counting more items than it holds', patched((copy) => copy.writeUInt16BE(4, base.bytes.indexOf('iinf') + 8))],
      ['an item name without its terminator', patched((copy) => copy.writeUInt8(0x41, base.bytes.indexOf('Exif') + 4))],
      ['a meta box of version 1', patched((copy) => copy.writeUInt8(1, base.metaStart + 8))],
      ['no meta box', patched((copy) => copy.write('free', base.metaStart + 4, 'latin1'))],
      ['two meta boxes', Buffer.concat([base.bytes.subarray(0, base.mdatStart), base.bytes.subarray(base.metaStart)])],
      ['no ftyp first', patched((copy) => copy.write('free', 4, 'latin1'))],
    );
    assert.ok(exifExtent.start > base.mdatStart, 'the test reads the Exif entry it means');
    assert.equal(base.bytes.readUInt32BE(exifOffsetAt), exifExtent.start, 'the offset patched is the Exif extent');
    for (const [name, bytes] of refused) {
      const { outcome } = await stripCopy(bytes);
      assert.ok(unparsed(outcome), `${name}: ${JSON.stringify(outcome)}`);
    }
  });

  it('never throws on corrupted headers: each answer is unparsed (nothing changed) or a strip of zeros only', async () => {
    let seed = 20;
    const random = () => {
      // xorshift32: the same corruptions on every run.
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const metaEnd = avif.indexOf('mdat') - 4;
    for (let round = 0; round < 3000; round++) {
      const copy = Buffer.from(avif);
      const flips = 1 + Math.floor(random() * 3);
      for (let f = 0; f < flips; f++) copy[Math.floor(random() * metaEnd)] = Math.floor(random() * 256);
      const { outcome, bytes } = await stripCopy(copy);
      if (outcome.kind === 'stripped') assert.ok(changedBytes(copy, bytes).allZero, `round ${round}`);
    }
  });

  it('locates nothing in a file that is not HEIF at all', async () => {
    const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: 'blue' } }).jpeg().toBuffer();
    const read = async ({ start, end }: ByteRange) => jpeg.subarray(start, end + 1);
    assert.equal((await locateHeifMetadata(read, jpeg.length)).kind, 'unparsed');
  });

  it('blankRanges zeroes across chunk boundaries without changing the chunks it was given', async () => {
    const source = Buffer.from('abcdefghij');
    const chunks = [source.subarray(0, 3), source.subarray(3, 7), source.subarray(7)];
    const out: Uint8Array[] = [];
    for await (const chunk of blankRanges((async function* () {
      yield* chunks;
    })(), [{ start: 2, end: 4 }, { start: 9, end: 9 }])) out.push(chunk);
    assert.equal(Buffer.concat(out).toString('latin1'), 'ab\0\0\0fghi\0');
    assert.equal(source.toString(), 'abcdefghij');
  });
});
