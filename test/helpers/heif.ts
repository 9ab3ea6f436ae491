import sharp from 'sharp';
import { GPS_EXIF, noiseImage } from './images.js';

/**
 * HEIF files for the metadata tests. sharp writes AVIF with EXIF and XMP
 * items, laid out as an iPhone's HEIC (ftyp, meta with iinf/iloc, mdat);
 * relabelled, the same bytes stand in for a HEIC.
 */

/** XMP with a GPS position, as a camera app writes it. */
export const GPS_XMP =
  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
  '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.4N" exif:GPSLongitude="2,21.1E"/></rdf:RDF></x:xmpmeta>';

/** An AVIF photo of width × height carrying EXIF (camera make "HeifTestCam", GPS) and XMP (GPS) items. */
export async function avifWithLocation(width = 64, height = 48): Promise<Buffer> {
  return noiseImage(width, height)
    .avif({ quality: 50, effort: 0 })
    .withExif({ IFD0: { Make: 'HeifTestCam' }, ...GPS_EXIF })
    .withXmp(GPS_XMP)
    .toBuffer();
}

/** A copy whose ftyp major brand is `brand` ("heic": what sniff calls image/heic). */
export function withMajorBrand(bytes: Uint8Array, brand: string): Buffer {
  const copy = Buffer.from(bytes);
  if (copy.toString('latin1', 4, 8) !== 'ftyp') throw new Error('not an ISO BMFF file');
  copy.write(brand, 8, 'latin1');
  return copy;
}

/**
 * A HEIC sharp cannot decode, like an iPhone's photo for the prebuilt
 * libvips (no HEVC decoder): the major brand says heic and the image item is
 * typed hvc1 (its AV1 payload then reads as nothing libheif can decode). The
 * metadata items and every offset are as they were.
 */
export function undecodableHeic(avif: Uint8Array): Buffer {
  const copy = withMajorBrand(avif, 'heic');
  let at: number;
  let replaced = 0;
  while ((at = copy.indexOf('av01', 0, 'latin1')) !== -1) {
    copy.write('hvc1', at, 'latin1');
    replaced++;
  }
  if (replaced === 0) throw new Error('no av01 item to relabel');
  return copy;
}

/** How many bytes of `bytes` differ from `original` (same length), and whether every changed byte is now zero. */
export function changedBytes(original: Uint8Array, bytes: Uint8Array): { readonly count: number; readonly allZero: boolean } {
  let count = 0;
  let allZero = true;
  for (let i = 0; i < original.length; i++) {
    if (original[i] === bytes[i]) continue;
    count++;
    if (bytes[i] !== 0) allZero = false;
  }
  return { count, allZero };
}

export async function decodedSize(bytes: Uint8Array): Promise<{ readonly width: number; readonly height: number }> {
  const { info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height };
}

/** One item of a synthetic HEIF file. */
export interface SyntheticItem {
  readonly id: number;
  /** infe item_type: 'hvc1' (the picture), 'Exif', 'mime'. */
  readonly type: string;
  readonly contentType?: string;
  readonly data: Uint8Array;
  readonly constructionMethod?: number;
  readonly dataReference?: number;
  /** Stored as two extents, cut here. */
  readonly splitAt?: number;
}

export interface SyntheticLayout {
  readonly ilocVersion?: number;
  readonly infeVersion?: number;
  readonly offsetSize?: number;
  readonly lengthSize?: number;
  readonly baseOffsetSize?: number;
  readonly indexSize?: number;
  /** mdat with a 64-bit size (size field 1). */
  readonly largeMdat?: boolean;
  /** mdat with size 0: "to the end of the file". */
  readonly openMdat?: boolean;
}

/**
 * A HEIF file built box by box (ISO/IEC 14496-12 and 23008-12): ftyp (heic),
 * meta (hdlr pict, pitm, iinf, iloc), mdat holding the items' data in order.
 * `extents`: where each item's bytes are (absolute, inclusive).
 */
export function syntheticHeif(items: readonly SyntheticItem[], layout: SyntheticLayout = {}): { readonly bytes: Buffer; readonly extents: Map<number, { start: number; end: number }[]>; readonly metaStart: number; readonly mdatStart: number } {
  const ftyp = box('ftyp', Buffer.from('heic'), u32(0), Buffer.from('mif1heic'));
  const mdatHeader = layout.largeMdat ? 16 : 8;
  const build = (payloadStart: number) => {
    const extents = new Map<number, { start: number; end: number }[]>();
    let position = payloadStart;
    for (const item of items) {
      const cut = item.splitAt ?? item.data.length;
      const pieces = item.splitAt === undefined ? [item.data.length] : [cut, item.data.length - cut];
      extents.set(
        item.id,
        pieces.map((length) => {
          const range = { start: position, end: position + length - 1 };
          position += length;
          return range;
        }),
      );
    }
    return { meta: metaBox(items, extents, payloadStart, layout), extents };
  };
  const metaLength = build(0).meta.length;
  const mdatStart = ftyp.length + metaLength;
  const { meta, extents } = build(mdatStart + mdatHeader);
  const data = Buffer.concat(items.map((item) => item.data));
  const mdat = layout.largeMdat
    ? Buffer.concat([u32(1), Buffer.from('mdat'), u64(16 + data.length), data])
    : Buffer.concat([u32(layout.openMdat ? 0 : 8 + data.length), Buffer.from('mdat'), data]);
  return { bytes: Buffer.concat([ftyp, meta, mdat]), extents, metaStart: ftyp.length, mdatStart };
}

function metaBox(items: readonly SyntheticItem[], extents: Map<number, { start: number; end: number }[]>, base: number, layout: SyntheticLayout): Buffer {
  const infeVersion = layout.infeVersion ?? 2;
  const infes = items.map((item) =>
    fullBox(
      'infe',
      infeVersion,
      infeVersion === 3 ? u32(item.id) : u16(item.id),
      u16(0),
      Buffer.from(item.type, 'latin1'),
      Buffer.from('\0'),
      item.type === 'mime' ? Buffer.from(`${item.contentType ?? ''}\0`) : Buffer.alloc(0),
    ),
  );
  const iinf = fullBox('iinf', 0, u16(items.length), ...infes);
  const version = layout.ilocVersion ?? 1;
  const offsetSize = layout.offsetSize ?? 4;
  const lengthSize = layout.lengthSize ?? 4;
  const baseOffsetSize = layout.baseOffsetSize ?? 0;
  const indexSize = layout.indexSize ?? 0;
  const entries = items.map((item) => {
    const ranges = extents.get(item.id) ?? [];
    const baseOffset = baseOffsetSize === 0 ? 0 : base;
    return Buffer.concat([
      version < 2 ? u16(item.id) : u32(item.id),
      version === 0 ? Buffer.alloc(0) : u16(item.constructionMethod ?? 0),
      u16(item.dataReference ?? 0),
      uintOf(baseOffsetSize, baseOffset),
      u16(ranges.length),
      ...ranges.map((range, index) =>
        Buffer.concat([version === 0 ? Buffer.alloc(0) : uintOf(indexSize, index + 1), uintOf(offsetSize, range.start - baseOffset), uintOf(lengthSize, range.end - range.start + 1)]),
      ),
    ]);
  });
  const iloc = fullBox(
    'iloc',
    version,
    Buffer.from([(offsetSize << 4) | lengthSize, (baseOffsetSize << 4) | (version === 0 ? 0 : indexSize)]),
    version < 2 ? u16(items.length) : u32(items.length),
    ...entries,
  );
  const hdlr = fullBox('hdlr', 0, u32(0), Buffer.from('pict'), Buffer.alloc(12), Buffer.from('\0'));
  const pitm = fullBox('pitm', 0, u16(items[0]?.id ?? 1));
  return fullBox('meta', 0, hdlr, pitm, iinf, iloc);
}

export function box(type: string, ...parts: Uint8Array[]): Buffer {
  const payload = Buffer.concat(parts);
  return Buffer.concat([u32(8 + payload.length), Buffer.from(type, 'latin1'), payload]);
}

export function fullBox(type: string, version: number, ...parts: Uint8Array[]): Buffer {
  return box(type, Buffer.from([version, 0, 0, 0]), ...parts);
}

function u16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

function u64(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(value));
  return bytes;
}

function uintOf(size: number, value: number): Buffer {
  if (size === 0) return Buffer.alloc(0);
  if (size === 4) return u32(value);
  if (size === 8) return u64(value);
  // An invalid field size (a test of the parser's refusal): write that many zero bytes.
  return Buffer.alloc(size);
}
