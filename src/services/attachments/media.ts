import sharp from 'sharp';
import { type RewritableFile, stripHeifMetadata } from './heif-metadata.js';
import { SNIFF_BYTES, sniff, typeAllowed } from './sniff.js';
import { stripMetadata } from './strip-metadata.js';

/**
 * What the server does with a finished plaintext image (docs/attachments.md,
 * "Images"): its size after EXIF orientation, a small WebP thumbnail, and —
 * when it carries EXIF, XMP or IPTC metadata the sender did not ask to keep —
 * the same image without it, so a photo's location never reaches the other
 * members. An image sharp cannot read safely (truncated, corrupt, crafted,
 * over the pixel limit, too slow) gets no size or thumbnail and is stored as
 * a plain file — without its metadata all the same when it is a JPEG, PNG or
 * WebP whose structure can be walked. This never throws for bad input.
 */

export interface ImageProcessorOptions {
  /** [attachments] max_image_pixels: width × height past which nothing is decoded (decompression bombs). */
  readonly maxPixels: number;
  /** [attachments] thumbnail_pixels: the thumbnail's longest side. */
  readonly thumbnailPixels: number;
  /**
   * Encoded bytes read into memory at most (default 128 MiB): sharp holds its
   * whole input in memory whether handed a stream or a buffer, so this bounds
   * what one image costs before decoding. A larger image is stored as a file.
   */
  readonly maxInputBytes?: number;
  /** Images processed at once (default 1): a 50-megapixel decode takes hundreds of MB. */
  readonly concurrency?: number;
  /** Seconds sharp may spend on one output before it gives up (default 30). */
  readonly timeoutSeconds?: number;
}

/** What sharp found: absent from ProcessedImage when it could not decode the image within the limits. */
interface Picture {
  /** After EXIF orientation (orientations 5–8 swap them), as a viewer shows the image. */
  readonly width: number;
  readonly height: number;
  /** WebP, longest side at most thumbnailPixels, no metadata. */
  readonly thumbnail: { readonly bytes: Uint8Array; readonly width: number; readonly height: number };
}

export interface ProcessedImage extends Partial<Picture> {
  /**
   * The image to store instead of the upload's bytes, without EXIF/XMP/IPTC:
   * JPEG, PNG and WebP with only the metadata left out (the same picture
   * bytes, an EXIF orientation kept as a one-tag EXIF in JPEG), other formats
   * re-encoded by sharp, turned upright (PNG, GIF, TIFF losslessly). Absent
   * when there was no such metadata or the sender kept it.
   */
  readonly rewritten?: Uint8Array;
  /** Why metadata this image may carry could not be removed (for the log): it is stored as sent. */
  readonly metadataNotRemoved?: string;
}

/** The sniffed types processImage reads (sniff.ts names them); SVG is never among them: it is served as a download. */
const FORMATS: Readonly<Record<string, string>> = {
  'image/jpeg': 'jpeg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/avif': 'heif',
  'image/heic': 'heif',
  'image/heif': 'heif',
  'image/tiff': 'tiff',
};

/** The sniffed HEIF types (sniff.ts): HEIC, HEIF, and AVIF too, whose metadata is laid out the same way. */
const HEIF_TYPES: ReadonlySet<string> = new Set(['image/heic', 'image/heif', 'image/avif']);

/** Whether `mime` (sniffed) is an image type worth handing to ImageProcessor. */
export function isProcessableImage(mime: string): boolean {
  return mime in FORMATS;
}

/**
 * Processes images one (or `concurrency`) at a time, in arrival order: the
 * queue, not the caller, bounds the memory several large uploads finishing
 * together would take. One per server (the composition root makes it).
 */
export class ImageProcessor {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly maxInputBytes: number;
  private readonly concurrency: number;
  private readonly timeoutSeconds: number;

  constructor(private readonly options: ImageProcessorOptions) {
    this.maxInputBytes = options.maxInputBytes ?? 128 * 1024 * 1024;
    this.concurrency = options.concurrency ?? 1;
    this.timeoutSeconds = options.timeoutSeconds ?? 30;
    // libvips' operation cache keeps decoded images for reuse: every upload is a new image, so it only holds memory.
    sharp.cache(false);
    // libvips' worker threads per image (default: one per core), each with its own buffers: images wait in this queue instead.
    sharp.concurrency(1);
  }

  /**
   * `mime`: what sniff said; `read`: opens the bytes (BlobStore.readStaged),
   * called only once this image's turn has come, so nothing is held open while
   * it waits. Undefined for a type it does not read, and for any image it
   * cannot process safely. Rejects only when reading fails.
   */
  async processImage(
    mime: string,
    read: () => AsyncIterable<Uint8Array> | Uint8Array,
    options: { readonly keepMetadata: boolean },
  ): Promise<ProcessedImage | undefined> {
    const format = FORMATS[mime];
    if (!format) return undefined;
    await this.acquire();
    try {
      // A failure to read the staged bytes is the store's, and the caller's to report: it propagates.
      const input = read();
      const bytes = input instanceof Uint8Array ? input : await readAtMost(input, this.maxInputBytes);
      if (!bytes || bytes.length > this.maxInputBytes) {
        // Too large to hold: HEIF files still go to the in-place blanker, which streams; others are stored as sent, and logged.
        if (options.keepMetadata || HEIF_TYPES.has(mime)) return undefined;
        return { metadataNotRemoved: `larger than ${this.maxInputBytes} bytes, the most an image is read into memory` };
      }
      try {
        return await this.process(bytes, mime, format, options.keepMetadata);
      } catch {
        // sharp's errors for bad input are plain Errors with libvips' text: all mean "not an image we can use".
        return undefined;
      }
    } finally {
      this.release();
    }
  }

  /**
   * Metadata goes losslessly where the container allows it (JPEG, PNG, WebP:
   * strip-metadata.ts, no pixel decoded, the picture bytes untouched), even
   * when sharp cannot read the image (over the pixel limit, truncated); sharp
   * re-encodes only the other formats (and a WebP or PNG whose EXIF turned it:
   * neither format can say so without EXIF).
   */
  private async process(bytes: Uint8Array, mime: string, format: string, keepMetadata: boolean): Promise<ProcessedImage | undefined> {
    const header = await this.load(bytes).metadata().catch(() => undefined);
    const readable = header?.format === format && Boolean(header.width && header.height) ? header : undefined;
    const picture = readable ? await this.picture(bytes, readable).catch(() => undefined) : undefined;
    if (keepMetadata) return picture;
    const lossless = stripMetadata(mime, bytes);
    if (lossless !== undefined && lossless !== 'unparsed' && (lossless.droppedOrientation === undefined || !picture)) {
      // Undecodable, a WebP or PNG loses its orientation with its EXIF (no pixels to turn): its location matters more.
      if (lossless.removed === 0) return picture;
      return { ...picture, rewritten: lossless.bytes };
    }
    // 'unparsed' may be metadata hidden where sharp does not look for it (strip-metadata's last check): re-encoded then.
    const carriesMetadata = !header || lossless === 'unparsed' || Boolean(header.exif ?? header.xmp ?? header.iptc);
    if (!carriesMetadata) return picture;
    if (picture && readable) {
      const animated = (readable.pages ?? 1) > 1;
      const rewritten = await reencode(this.load(bytes, animated).rotate().keepIccProfile(), format, readable)
        .toBuffer()
        .catch(() => undefined);
      if (rewritten) return { ...picture, rewritten };
    }
    // The re-encode failed where a lossless strip had only the orientation against it: location goes first.
    if (lossless !== undefined && lossless !== 'unparsed') return { ...picture, rewritten: lossless.bytes };
    // HEIF files sharp cannot rewrite go to the upload service's in-place blanker (heif-metadata.ts) instead.
    if (HEIF_TYPES.has(mime)) return undefined;
    return { ...picture, metadataNotRemoved: lossless === 'unparsed' ? `${format} structure not understood, and sharp could not read it` : `sharp could not read or rewrite this ${format}` };
  }

  private load(bytes: Uint8Array, animated = false): sharp.Sharp {
    // sequentialRead: libvips streams the decode top to bottom instead of holding the whole image for random access.
    return sharp(bytes, { limitInputPixels: this.options.maxPixels, failOn: 'truncated', animated, sequentialRead: true }).timeout({
      seconds: this.timeoutSeconds,
    });
  }

  /** Size after orientation and the thumbnail; rejects (sharp's plain Errors) for anything it cannot decode within the limits. */
  private async picture(bytes: Uint8Array, header: sharp.Metadata): Promise<Picture | undefined> {
    const { maxPixels, thumbnailPixels } = this.options;
    // The header alone: a bomb is refused here before a pixel is decoded (limitInputPixels is the second guard).
    if (!header.width || !header.height || header.width * header.height > maxPixels) return undefined;
    const swapped = (header.orientation ?? 1) >= 5;
    // resize right after load lets libvips shrink on load (a JPEG decoded at 1/8 scale): a fraction of a full decode's memory.
    const thumbnail = await this.load(bytes)
      .rotate()
      .resize(thumbnailPixels, thumbnailPixels, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 75 })
      .toBuffer({ resolveWithObject: true });
    return {
      width: swapped ? header.height : header.width,
      height: swapped ? header.width : header.height,
      thumbnail: { bytes: thumbnail.data, width: thumbnail.info.width, height: thumbnail.info.height },
    };
  }

  private async acquire(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return;
    }
    // The slot is handed over by release(): running stays counted.
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}

/** The same format again; only JPEG, WebP and AVIF are lossy, at a quality that keeps a photo as it was. */
function reencode(image: sharp.Sharp, format: string, metadata: sharp.Metadata): sharp.Sharp {
  switch (format) {
    case 'jpeg':
      return image.jpeg({ quality: 92, chromaSubsampling: metadata.chromaSubsampling === '4:4:4' ? '4:4:4' : '4:2:0' });
    case 'png':
      return image.png();
    case 'webp':
      return image.webp({ quality: 92 });
    case 'gif':
      return image.gif();
    case 'tiff':
      return image.tiff({ compression: 'lzw' });
    default:
      // HEIF: AVIF is the one HEIF encoding sharp's own libvips writes; HEIC (HEVC) it cannot, and this throws.
      return metadata.compression === 'av1' ? image.avif({ quality: 80 }) : image.heif({ compression: 'hevc' });
  }
}

/** The whole input, or undefined as soon as it passes `max` bytes (the rest is not read). */
async function readAtMost(input: AsyncIterable<Uint8Array>, max: number): Promise<Uint8Array | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of input) {
    total += chunk.length;
    if (total > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/**
 * What the upload service's finish pipeline calls (its UploadMedia): sniffing
 * and the allowed-types check from sniff.ts, images through one
 * ImageProcessor. The composition root makes one per server.
 */
export function attachmentMedia(options: ImageProcessorOptions) {
  const images = new ImageProcessor(options);
  return {
    sniffBytes: SNIFF_BYTES,
    sniff,
    typeAllowed,
    processImage: (mime: string, read: () => AsyncIterable<Uint8Array>, processing: { readonly keepMetadata: boolean }) =>
      images.processImage(mime, read, processing),
    /** HEIF files keep metadata as items of their own, which can be zeroed in place (heif-metadata.ts); no other format here. */
    stripWithoutDecoding: async (mime: string, file: RewritableFile) => (HEIF_TYPES.has(mime) ? stripHeifMetadata(file) : undefined),
  };
}
