import sharp from 'sharp';
import { type RewritableFile, stripHeifMetadata } from './heif-metadata.js';
import { SNIFF_BYTES, sniff, typeAllowed } from './sniff.js';

/**
 * What the server does with a finished plaintext image (docs/attachments.md,
 * "Images"): its size after EXIF orientation, a small WebP thumbnail, and —
 * when it carries EXIF, XMP or IPTC metadata the sender did not ask to keep —
 * the same image rewritten without it, so a photo's location never reaches
 * the other members. Anything sharp cannot read safely (truncated, corrupt,
 * crafted, over the pixel limit, too slow) yields `undefined`: the upload is
 * then stored as a plain file with no thumbnail. This never throws for bad
 * input.
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

export interface ProcessedImage {
  /** After EXIF orientation (orientations 5–8 swap them), as a viewer shows the image. */
  readonly width: number;
  readonly height: number;
  /**
   * The image to store instead of the upload's bytes: same format, orientation
   * applied, EXIF/XMP/IPTC dropped (the ICC colour profile kept; PNG stays
   * lossless). Absent when the image had no such metadata or the sender kept it.
   */
  readonly rewritten?: Uint8Array;
  /** WebP, longest side at most thumbnailPixels, no metadata. */
  readonly thumbnail: { readonly bytes: Uint8Array; readonly width: number; readonly height: number };
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
      if (!bytes || bytes.length > this.maxInputBytes) return undefined;
      try {
        return await this.process(bytes, format, options.keepMetadata);
      } catch {
        // sharp's errors for bad input are plain Errors with libvips' text: all mean "not an image we can use".
        return undefined;
      }
    } finally {
      this.release();
    }
  }

  private async process(bytes: Uint8Array, format: string, keepMetadata: boolean): Promise<ProcessedImage | undefined> {
    const { maxPixels, thumbnailPixels } = this.options;
    const load = (animated = false) =>
      sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated', animated }).timeout({ seconds: this.timeoutSeconds });
    // The header alone: a bomb is refused here before a pixel is decoded (limitInputPixels is the second guard).
    const metadata = await load().metadata();
    if (metadata.format !== format || !metadata.width || !metadata.height) return undefined;
    if (metadata.width * metadata.height > maxPixels) return undefined;
    const swapped = (metadata.orientation ?? 1) >= 5;
    const width = swapped ? metadata.height : metadata.width;
    const height = swapped ? metadata.width : metadata.height;

    const thumbnail = await load()
      .rotate()
      .resize(thumbnailPixels, thumbnailPixels, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 75 })
      .toBuffer({ resolveWithObject: true });

    const carriesMetadata = Boolean(metadata.exif ?? metadata.xmp ?? metadata.iptc);
    let rewritten: Uint8Array | undefined;
    if (carriesMetadata && !keepMetadata) {
      const animated = (metadata.pages ?? 1) > 1;
      rewritten = await reencode(load(animated).rotate().keepIccProfile(), format, metadata).toBuffer();
    }
    return {
      width,
      height,
      ...(rewritten ? { rewritten } : {}),
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
