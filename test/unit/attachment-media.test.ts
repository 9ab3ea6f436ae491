import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { ImageProcessor, isProcessableImage } from '../../src/services/attachments/media.js';
import { GPS_EXIF as GPS, bombPng, noiseImage as noise } from '../helpers/images.js';

const processor = () => new ImageProcessor({ maxPixels: 50_000_000, thumbnailPixels: 64 });

async function* chunksOf(bytes: Uint8Array, size = 1000): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

describe('ImageProcessor', () => {
  it('rewrites a JPEG that carries GPS data without it, and makes a WebP thumbnail', async () => {
    const photo = await noise(400, 300).jpeg().withExif(GPS).toBuffer();
    assert.ok((await sharp(photo).metadata()).exif, 'the test photo has EXIF');
    const result = await processor().processImage('image/jpeg', () => chunksOf(photo), { keepMetadata: false });
    assert.ok(result?.rewritten, 'rewritten');
    const rewritten = await sharp(result.rewritten).metadata();
    assert.equal(rewritten.format, 'jpeg');
    assert.equal(rewritten.exif, undefined, 'no EXIF (no GPS) in what is stored');
    assert.equal(rewritten.xmp, undefined);
    assert.deepEqual([rewritten.width, rewritten.height, result.width, result.height], [400, 300, 400, 300]);
    assert.ok(result.thumbnail);
    const thumbnail = await sharp(result.thumbnail.bytes).metadata();
    assert.equal(thumbnail.format, 'webp');
    assert.equal(thumbnail.exif, undefined);
    assert.deepEqual([result.thumbnail.width, result.thumbnail.height, thumbnail.width, thumbnail.height], [64, 48, 64, 48]);
  });

  it('keeps the metadata when the sender asked to (no rewrite), and the thumbnail still has none', async () => {
    const photo = await noise(40, 30).jpeg().withExif(GPS).toBuffer();
    const result = await processor().processImage('image/jpeg', () => photo, { keepMetadata: true });
    assert.ok(result);
    assert.equal(result.rewritten, undefined);
    assert.ok(result.thumbnail);
    assert.equal((await sharp(result.thumbnail.bytes).metadata()).exif, undefined);
  });

  it('leaves an image with no metadata as it is', async () => {
    const plain = await noise(40, 30).jpeg().toBuffer();
    const result = await processor().processImage('image/jpeg', () => plain, { keepMetadata: false });
    assert.ok(result);
    assert.equal(result.rewritten, undefined);
  });

  it('rewrites a PNG with metadata losslessly: the same pixels, no EXIF', async () => {
    const source = noise(50, 40);
    const pixels = await source.clone().raw().toBuffer();
    const png = await source.png().withExif(GPS).toBuffer();
    assert.ok((await sharp(png).metadata()).exif, 'the test PNG has an eXIf chunk');
    const result = await processor().processImage('image/png', () => png, { keepMetadata: false });
    assert.ok(result?.rewritten);
    const metadata = await sharp(result.rewritten).metadata();
    assert.equal(metadata.format, 'png');
    assert.equal(metadata.exif, undefined);
    assert.deepEqual(await sharp(result.rewritten).removeAlpha().raw().toBuffer(), pixels);
  });

  it('rewrites an animated WebP with GPS data keeping every frame', async () => {
    const frame = (colour: string) => sharp({ create: { width: 40, height: 30, channels: 3, background: colour } }).png().toBuffer();
    const frames = await Promise.all(['#f00', '#0f0', '#00f'].map(frame));
    const animated = await sharp(frames, { join: { animated: true } }).webp().withExif(GPS).toBuffer();
    assert.ok((await sharp(animated).metadata()).exif);
    const result = await processor().processImage('image/webp', () => animated, { keepMetadata: false });
    assert.ok(result?.rewritten);
    const metadata = await sharp(result.rewritten).metadata();
    assert.deepEqual([metadata.format, metadata.pages, metadata.exif, result.width, result.height], ['webp', 3, undefined, 40, 30]);
  });

  it('applies EXIF orientation 6: width and height swapped, the stored JPEG its same pixels with orientation 6 alone', async () => {
    const photo = await noise(60, 20).jpeg().withExif(GPS).withMetadata({ orientation: 6 }).toBuffer();
    const result = await processor().processImage('image/jpeg', () => photo, { keepMetadata: false });
    assert.ok(result?.rewritten && result.thumbnail);
    assert.deepEqual([result.width, result.height], [20, 60]);
    const rewritten = await sharp(result.rewritten).metadata();
    assert.deepEqual([rewritten.width, rewritten.height, rewritten.orientation, rewritten.exif?.length], [60, 20, 6, 32]);
    assert.deepEqual(await sharp(result.rewritten).raw().toBuffer(), await sharp(photo).raw().toBuffer(), 'not re-encoded');
    assert.ok(result.thumbnail.height > result.thumbnail.width, 'the thumbnail is upright');
  });

  it('turns a WebP or PNG whose EXIF holds an orientation upright with sharp (neither has an orientation without EXIF)', async () => {
    for (const [mime, image] of [
      ['image/webp', await noise(60, 20).webp().withExif(GPS).withMetadata({ orientation: 6 }).toBuffer()],
      ['image/png', await noise(60, 20).png().withExif(GPS).withMetadata({ orientation: 6 }).toBuffer()],
    ] as const) {
      const result = await processor().processImage(mime, () => image, { keepMetadata: false });
      assert.ok(result?.rewritten, mime);
      const rewritten = await sharp(result.rewritten).metadata();
      assert.deepEqual([rewritten.format, rewritten.width, rewritten.height, rewritten.exif], [mime.slice(6), 20, 60, undefined]);
    }
  });

  it('re-encodes a JPEG sharp reads whose EXIF hides under another marker (the lossless strip refuses it)', async () => {
    const plain = await noise(40, 30).jpeg().toBuffer();
    const hidden = Buffer.concat([Buffer.from('JFXX\0Exif\0\0where I live'), Buffer.alloc(2)]);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(hidden.length + 2);
    const crafted = Buffer.concat([plain.subarray(0, 2), Buffer.from([0xff, 0xe0]), length, hidden, plain.subarray(2)]);
    assert.equal((await sharp(crafted).metadata()).exif, undefined, 'sharp sees no EXIF');
    const result = await processor().processImage('image/jpeg', () => crafted, { keepMetadata: false });
    assert.ok(result?.rewritten && result.thumbnail);
    assert.ok(!Buffer.from(result.rewritten).includes(Buffer.from('where I live')));
  });

  it('returns undefined for a truncated JPEG without metadata', async () => {
    const photo = await noise(300, 200).jpeg().toBuffer();
    const result = await processor().processImage('image/jpeg', () => photo.subarray(0, photo.length / 2), { keepMetadata: false });
    assert.equal(result, undefined);
  });

  it('strips the GPS data of a JPEG sharp refuses because its last bytes are missing: stored without it, no size or thumbnail', async () => {
    const photo = await noise(300, 200).jpeg().withExif(GPS).toBuffer();
    const cut = photo.subarray(0, photo.length - 300);
    const result = await processor().processImage('image/jpeg', () => cut, { keepMetadata: false });
    assert.ok(result?.rewritten);
    assert.deepEqual([result.width, result.height, result.thumbnail, result.metadataNotRemoved], [undefined, undefined, undefined, undefined]);
    assert.ok(!Buffer.from(result.rewritten).includes(Buffer.from('Exif\0\0')));
    assert.equal(await processor().processImage('image/jpeg', () => cut, { keepMetadata: true }), undefined, 'kept: stored as sent');
  });

  it('strips the GPS data of an 8000 × 8000 JPEG, over max_image_pixels, without decoding it', async () => {
    const big = await sharp({ create: { width: 8000, height: 8000, channels: 3, background: '#468' } }).jpeg().withExif(GPS).toBuffer();
    assert.ok((await sharp(big, { limitInputPixels: false }).metadata()).exif);
    const result = await processor().processImage('image/jpeg', () => chunksOf(big, 65536), { keepMetadata: false });
    assert.ok(result?.rewritten);
    assert.equal(result.thumbnail, undefined, 'over the pixel limit: no thumbnail');
    const stored = await sharp(result.rewritten, { limitInputPixels: false }).metadata();
    assert.deepEqual([stored.width, stored.height, stored.exif], [8000, 8000, undefined]);
    const exifAt = big.indexOf(Buffer.from('Exif\0\0')) - 4;
    assert.equal(result.rewritten.length, big.length - big.readUInt16BE(exifAt + 2) - 2, 'only the EXIF segment left out');
  });

  it('says why when metadata may be there and neither way removes it (stored as sent, the upload logs it)', async () => {
    const fake = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(5000)]);
    const result = await processor().processImage('image/png', () => fake, { keepMetadata: false });
    assert.ok(result?.metadataNotRemoved);
    assert.deepEqual([result.rewritten, result.width, result.thumbnail], [undefined, undefined, undefined]);
  });

  it('returns undefined for random bytes behind a PNG signature when kept; another format than the sniffed one is no picture, and said to be unstripped', async () => {
    const fake = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(5000)]);
    assert.equal(await processor().processImage('image/png', () => fake, { keepMetadata: true }), undefined);
    const jpeg = await noise(20, 20).jpeg().toBuffer();
    // Not understood and not readable: metadata may be in it, so the upload logs that it stays.
    const result = await processor().processImage('image/png', () => jpeg, { keepMetadata: false });
    assert.ok(result?.metadataNotRemoved);
    assert.deepEqual([result.rewritten, result.width, result.thumbnail], [undefined, undefined, undefined]);
  });

  it('refuses a decompression bomb (20000 × 20000 of one colour in a small PNG) without decoding it', async () => {
    const bomb = bombPng(20_000, 20_000);
    assert.ok(bomb.length < 200_000, `the bomb is small: ${bomb.length} bytes`);
    const header = await sharp(bomb, { limitInputPixels: false }).metadata();
    assert.deepEqual([header.width, header.height], [20_000, 20_000]);
    assert.equal(await processor().processImage('image/png', () => bomb, { keepMetadata: false }), undefined);
  });

  it('refuses an image over the pixel limit even when it is an honest one', async () => {
    const small = new ImageProcessor({ maxPixels: 999, thumbnailPixels: 64 });
    const png = await noise(40, 25).png().toBuffer();
    assert.equal(await small.processImage('image/png', () => png, { keepMetadata: false }), undefined, '1000 pixels > 999');
    assert.ok(await new ImageProcessor({ maxPixels: 1000, thumbnailPixels: 64 }).processImage('image/png', () => png, { keepMetadata: false }));
  });

  it('returns undefined for input past maxInputBytes without reading the rest', async () => {
    const png = await noise(100, 100).png().toBuffer();
    let read = 0;
    async function* counted(): AsyncIterable<Uint8Array> {
      for await (const chunk of chunksOf(png, 100)) {
        read += chunk.length;
        yield chunk;
      }
    }
    const result = await new ImageProcessor({ maxPixels: 1e6, thumbnailPixels: 64, maxInputBytes: 1000 }).processImage('image/png', () => counted(), { keepMetadata: false });
    assert.deepEqual(result, { metadataNotRemoved: 'larger than 1000 bytes, the most an image is read into memory' }, 'stored as sent, and the upload logs it');
    assert.equal(read, 1100, 'stopped at the first chunk past the limit');
  });

  it('does not handle SVG or non-image types', async () => {
    assert.equal(isProcessableImage('image/svg+xml'), false);
    assert.equal(isProcessableImage('image/bmp'), false);
    assert.equal(isProcessableImage('image/avif'), true);
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    assert.equal(await processor().processImage('image/svg+xml', () => svg, { keepMetadata: false }), undefined);
  });

  it('processes one image at a time: the second input is not read before the first is done', async () => {
    const images = processor();
    const png = await noise(30, 30).png().toBuffer();
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    let secondStarted = false;
    async function* first(): AsyncIterable<Uint8Array> {
      yield png.subarray(0, 10);
      await firstHeld;
      yield png.subarray(10);
    }
    async function* second(): AsyncIterable<Uint8Array> {
      secondStarted = true;
      yield png;
    }
    const a = images.processImage('image/png', () => first(), { keepMetadata: false });
    let secondOpened = false;
    const b = images.processImage(
      'image/png',
      () => {
        secondOpened = true;
        return second();
      },
      { keepMetadata: false },
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(secondOpened, false, 'the second waits for the slot before its bytes are even opened');
    assert.equal(secondStarted, false);
    releaseFirst();
    assert.ok(await a);
    assert.ok(await b);
    assert.equal(secondStarted, true);
  });

  it('passes on a failure to read the staged bytes (not an image problem)', async () => {
    async function* failing(): AsyncIterable<Uint8Array> {
      yield new Uint8Array(10);
      throw new Error('disk gone');
    }
    await assert.rejects(processor().processImage('image/png', () => failing(), { keepMetadata: false }), /disk gone/);
  });
});
