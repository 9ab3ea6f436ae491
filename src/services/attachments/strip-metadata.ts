/**
 * Metadata out of JPEG, PNG and WebP without decoding a pixel
 * (docs/attachments.md, "Images"): the containers are walked segment by
 * segment (chunk by chunk) and the ones that carry EXIF (GPS), XMP, IPTC,
 * comments and text are left out; the compressed picture is copied byte for
 * byte, so the result decodes to exactly the same pixels. Memory: the input
 * (bounded by the image processor's maxInputBytes) and one copy of it.
 *
 * Defensive: anything not laid out as the format says before the picture data
 * (a segment or chunk running past the end, a missing signature, no picture
 * at all) is 'unparsed', and nothing is produced; a file cut short inside its
 * picture data keeps what it has, without its metadata. Never throws.
 */

export interface StrippedImage {
  readonly bytes: Uint8Array;
  /** Segments or chunks left out (0: the input had none; `bytes` is then the input itself). */
  readonly removed: number;
  /**
   * A WebP or PNG whose EXIF said Orientation ≠ 1: without its EXIF it shows
   * unrotated (neither format has an orientation of its own), so the caller
   * may prefer a rewrite that turns the pixels.
   */
  readonly droppedOrientation?: number;
}

export type StripResult = StrippedImage | 'unparsed';

/** The one entry point: the sniffed types whose metadata this removes losslessly; undefined for any other type. */
export function stripMetadata(mime: string, bytes: Uint8Array): StripResult | undefined {
  switch (mime) {
    case 'image/jpeg':
      return stripJpeg(bytes);
    case 'image/png':
      return stripPng(bytes);
    case 'image/webp':
      return stripWebp(bytes);
    default:
      return undefined;
  }
}

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const APP0 = 0xe0;
const APP2 = 0xe2;
const APP14 = 0xee;

/**
 * JPEG: of the APPn segments only APP0 (JFIF), APP2 holding an ICC profile and
 * APP14 (Adobe: how to read the colours) stay; APP1 (EXIF, XMP, extended
 * XMP), APP13 (IPTC, Photoshop), COM, an APP2 that is not ICC (MPF, FlashPix),
 * every other APPn (maker blocks) and any marker no decoder reads go, before
 * the first scan and between scans alike. Whatever follows EOI goes too: MPF's extra images (a preview, a
 * gain map) sit there, each with its own EXIF. An EXIF Orientation ≠ 1 is
 * written back as a minimal EXIF of that one tag, so the photo still shows
 * upright.
 */
export function stripJpeg(bytes: Uint8Array): StripResult {
  const n = bytes.length;
  if (n < 4 || bytes[0] !== 0xff || bytes[1] !== SOI) return 'unparsed';
  const parts: Uint8Array[] = [bytes.subarray(0, 2)];
  let removed = 0;
  let orientation: number | undefined;
  let orientationAt = -1;
  let scanned = false;
  let pos = 2;
  while (pos < n) {
    if (bytes[pos] !== 0xff) return 'unparsed';
    // Fill bytes (0xFF runs) may precede a marker.
    while (pos + 1 < n && bytes[pos + 1] === 0xff) pos++;
    if (pos + 1 >= n) break;
    const marker = bytes[pos + 1]!;
    if (marker === EOI) {
      parts.push(bytes.subarray(pos, pos + 2));
      if (pos + 2 < n) removed++;
      return finishJpeg(parts, removed, bytes, orientation, orientationAt, scanned);
    }
    if (marker === SOI || marker === 0x00) return 'unparsed';
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      // Standalone markers (TEM, RSTn): no length.
      parts.push(bytes.subarray(pos, pos + 2));
      pos += 2;
      continue;
    }
    if (pos + 4 > n) {
      if (scanned) break;
      return 'unparsed';
    }
    const end = pos + 2 + ((bytes[pos + 2]! << 8) | bytes[pos + 3]!);
    if (end < pos + 4 || end > n) {
      // Cut inside a segment: before the picture the file is broken; after a scan, what is left is an incomplete table.
      if (scanned) break;
      return 'unparsed';
    }
    const segment = bytes.subarray(pos, end);
    if (keepJpegSegment(marker, segment)) {
      parts.push(segment);
    } else {
      removed++;
      if (marker === 0xe1 && orientation === undefined && startsWithAscii(segment, 4, 'Exif\0\0')) {
        orientation = tiffOrientation(segment.subarray(10));
        orientationAt = parts.length;
      }
    }
    pos = end;
    if (marker === SOS) {
      scanned = true;
      // Entropy-coded data runs to the next marker: 0xFF followed by anything but 0x00 (a stuffed byte) or RSTn.
      let next = pos;
      for (;;) {
        next = bytes.indexOf(0xff, next);
        if (next < 0 || next + 1 >= n) {
          next = n;
          break;
        }
        const following = bytes[next + 1]!;
        if (following === 0x00 || (following >= 0xd0 && following <= 0xd7)) next += 2;
        else if (following === 0xff) next += 1;
        else break;
      }
      parts.push(bytes.subarray(pos, next));
      pos = next;
    }
  }
  // The end came before EOI: a file cut short. Fine once a scan had begun (a viewer shows what arrived).
  if (!scanned) return 'unparsed';
  return finishJpeg(parts, removed, bytes, orientation, orientationAt, scanned);
}

function finishJpeg(parts: Uint8Array[], removed: number, input: Uint8Array, orientation: number | undefined, orientationAt: number, scanned: boolean): StripResult {
  if (!scanned) return 'unparsed';
  if (removed === 0) return leftoverMetadata(input) ? 'unparsed' : { bytes: input, removed: 0 };
  if (parts.some(leftoverMetadata)) return 'unparsed';
  if (orientation !== undefined && orientation !== 1) parts.splice(orientationAt, 0, orientationExif(orientation));
  return { bytes: Buffer.concat(parts), removed };
}

/**
 * The last check: EXIF, XMP or IPTC found in what would be kept (a metadata
 * block under another marker or chunk type, or inside a size that runs past
 * the end) makes the file 'unparsed' rather than stored with it: the EXIF
 * header, a TIFF header with IFD0 right after it (EXIF without that header, as
 * PNG and WebP keep it), XMP, Photoshop's IPTC. Signatures of 6 bytes and
 * more: compressed picture data matches one by chance about once in 2^48 bytes.
 */
const SIGNATURES = ['Exif\0\0', 'II*\0\x08\0\0\0', 'MM\0*\0\0\0\x08', '<x:xmpmeta', 'http://ns.adobe.com/xap/1.0/', 'Photoshop 3.0\0'].map((text) =>
  Buffer.from(text, 'latin1'),
);

function leftoverMetadata(bytes: Uint8Array): boolean {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return SIGNATURES.some((signature) => buffer.includes(signature));
}

function keepJpegSegment(marker: number, segment: Uint8Array): boolean {
  if (marker === APP0 || marker === APP14) return true;
  if (marker === APP2) return startsWithAscii(segment, 4, 'ICC_PROFILE\0');
  // The picture: C0–CF (SOFn, DHT, DAC; not C8, reserved) and DA–DF (SOS, DQT, DNL, DRI, DHP, EXP).
  // Anything else (other APPn, COM, reserved or extension markers) no decoder needs: where makers hide data.
  return (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc8) || (marker >= 0xda && marker <= 0xdf);
}

/** APP1 "Exif\0\0" with a little-endian TIFF whose IFD0 holds one entry: Orientation (0x0112, SHORT, 1). */
function orientationExif(orientation: number): Uint8Array {
  const segment = Buffer.alloc(2 + 2 + 6 + 26);
  segment.set([0xff, 0xe1]);
  segment.writeUInt16BE(segment.length - 2, 2);
  segment.write('Exif\0\0', 4, 'latin1');
  const tiff = 10;
  segment.write('II', tiff, 'latin1');
  segment.writeUInt16LE(42, tiff + 2);
  segment.writeUInt32LE(8, tiff + 4); // IFD0 right after the header
  segment.writeUInt16LE(1, tiff + 8); // one entry
  segment.writeUInt16LE(0x0112, tiff + 10);
  segment.writeUInt16LE(3, tiff + 12); // SHORT
  segment.writeUInt32LE(1, tiff + 14);
  segment.writeUInt16LE(orientation, tiff + 18); // value in the entry, padded to 4 bytes
  segment.writeUInt32LE(0, tiff + 22); // no next IFD
  return segment;
}

/** IFD0's Orientation in a TIFF structure (EXIF), or undefined when absent or not readable. */
export function tiffOrientation(tiff: Uint8Array): number | undefined {
  if (tiff.length < 8) return undefined;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return undefined;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  if (view.getUint16(2, little) !== 42) return undefined;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return undefined;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return undefined;
    if (view.getUint16(entry, little) !== 0x0112) continue;
    if (view.getUint16(entry + 2, little) !== 3) return undefined;
    const value = view.getUint16(entry + 8, little);
    return value >= 1 && value <= 8 ? value : undefined;
  }
  return undefined;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/**
 * The ancillary chunks kept: how to show the picture (colour, transparency,
 * pixel size, APNG frames). Every critical chunk stays too (its type starts
 * with a capital); every other ancillary one goes: eXIf, tEXt, iTXt (XMP),
 * zTXt, tIME, and the private chunks where a maker hides data.
 */
const PNG_CRITICAL: ReadonlySet<string> = new Set(['IHDR', 'PLTE', 'IDAT', 'IEND']);
const PNG_KEPT: ReadonlySet<string> = new Set(['tRNS', 'cHRM', 'gAMA', 'iCCP', 'sBIT', 'sRGB', 'cICP', 'mDCV', 'cLLI', 'bKGD', 'hIST', 'pHYs', 'sPLT', 'acTL', 'fcTL', 'fdAT']);

/** PNG: the metadata chunks go, the others are copied with their CRC; anything after IEND goes too. An IDAT-less file is 'unparsed'. */
export function stripPng(bytes: Uint8Array): StripResult {
  const n = bytes.length;
  if (n < 8 || PNG_SIGNATURE.some((byte, i) => bytes[i] !== byte)) return 'unparsed';
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  let removed = 0;
  let droppedOrientation: number | undefined;
  let pos = 8;
  let sawData = false;
  while (pos < n) {
    const type = pos + 8 <= n ? latin1(bytes, pos + 4, 4) : '';
    const length = pos + 8 <= n ? readUint32BE(bytes, pos) : 0;
    const end = pos + 12 + length;
    if (pos + 8 > n || length > 0x7fffffff || end > n) {
      // Cut short: inside the picture data a viewer shows what arrived; anything else cut there is dropped.
      if (!sawData) return 'unparsed';
      if (type === 'IDAT') parts.push(bytes.subarray(pos));
      else removed++;
      pos = n;
      break;
    }
    if (pos === 8 && type !== 'IHDR') return 'unparsed';
    const critical = type.charCodeAt(0) >= 0x41 && type.charCodeAt(0) <= 0x5a;
    // A critical chunk no decoder knows makes every decoder refuse the file: not a PNG to keep.
    if (critical && !PNG_CRITICAL.has(type)) return 'unparsed';
    if (!critical && !PNG_KEPT.has(type)) {
      removed++;
      if (type === 'eXIf' && droppedOrientation === undefined) {
        const orientation = tiffOrientation(bytes.subarray(pos + 8, pos + 8 + length));
        if (orientation !== undefined && orientation !== 1) droppedOrientation = orientation;
      }
    } else {
      parts.push(bytes.subarray(pos, end));
    }
    if (type === 'IDAT') sawData = true;
    pos = end;
    if (type === 'IEND') {
      if (pos < n) removed++;
      break;
    }
  }
  if (!sawData || parts.some(leftoverMetadata)) return 'unparsed';
  if (removed === 0) return { bytes, removed: 0 };
  return { bytes: Buffer.concat(parts), removed, ...(droppedOrientation !== undefined ? { droppedOrientation } : {}) };
}

/** VP8X flag bits (WebP container spec): EXIF and XMP present. */
const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;
/** Chunks holding the picture: a file cut inside one keeps what arrived. */
const WEBP_PICTURE: ReadonlySet<string> = new Set(['VP8 ', 'VP8L', 'ALPH', 'ANMF']);
/** The chunks kept: the picture, VP8X, the animation's parameters and the ICC profile. EXIF, XMP and unknown chunks go. */
const WEBP_KEPT: ReadonlySet<string> = new Set([...WEBP_PICTURE, 'VP8X', 'ANIM', 'ICCP']);

/** WebP (RIFF): the EXIF, XMP and unknown chunks go, the VP8X flags that announce EXIF and XMP are cleared, the RIFF size follows. */
export function stripWebp(bytes: Uint8Array): StripResult {
  const n = bytes.length;
  if (n < 20 || latin1(bytes, 0, 4) !== 'RIFF' || latin1(bytes, 8, 4) !== 'WEBP') return 'unparsed';
  // Bytes past the RIFF's own size are not part of the image: dropped.
  const riffEnd = Math.min(n, 8 + readUint32LE(bytes, 4));
  const parts: Uint8Array[] = [];
  let removed = riffEnd < n ? 1 : 0;
  let droppedOrientation: number | undefined;
  let vp8x: Uint8Array | undefined;
  let sawPicture = false;
  let pos = 12;
  while (pos < riffEnd) {
    if (pos + 8 > riffEnd) {
      if (!sawPicture) return 'unparsed';
      removed++;
      break;
    }
    const type = latin1(bytes, pos, 4);
    const size = readUint32LE(bytes, pos + 4);
    const end = pos + 8 + size + (size % 2);
    if (end > riffEnd) {
      if (WEBP_PICTURE.has(type)) {
        parts.push(bytes.subarray(pos, riffEnd));
        sawPicture = true;
      } else if (!WEBP_KEPT.has(type)) {
        removed++;
      } else if (!(end === riffEnd + 1 && pos + 8 + size === riffEnd)) {
        return 'unparsed';
      } else {
        // An odd-sized last chunk without its padding byte: harmless.
        parts.push(bytes.subarray(pos, riffEnd));
      }
      break;
    }
    const chunk = bytes.subarray(pos, end);
    if (!WEBP_KEPT.has(type)) {
      removed++;
      if (type === 'EXIF' && droppedOrientation === undefined) {
        const data = chunk.subarray(8, 8 + size);
        const orientation = tiffOrientation(startsWithAscii(data, 0, 'Exif\0\0') ? data.subarray(6) : data);
        if (orientation !== undefined && orientation !== 1) droppedOrientation = orientation;
      }
    } else {
      if (type === 'VP8X') {
        if (size < 10 || pos !== 12) return 'unparsed';
        vp8x = Uint8Array.from(chunk);
        parts.push(vp8x);
      } else {
        parts.push(chunk);
      }
      if (WEBP_PICTURE.has(type)) sawPicture = true;
    }
    pos = end;
  }
  if (!sawPicture || parts.some(leftoverMetadata)) return 'unparsed';
  if (vp8x && vp8x[8]! & (VP8X_EXIF | VP8X_XMP)) {
    vp8x[8] = vp8x[8]! & ~(VP8X_EXIF | VP8X_XMP);
    if (removed === 0) removed++; // the flag announced a chunk that was not there: clearing it is still a change
  }
  if (removed === 0) return { bytes, removed: 0 };
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(12);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(4 + body.length, 4);
  header.write('WEBP', 8, 'latin1');
  return { bytes: Buffer.concat([header, body]), removed, ...(droppedOrientation !== undefined ? { droppedOrientation } : {}) };
}

function startsWithAscii(bytes: Uint8Array, offset: number, text: string): boolean {
  return bytes.length >= offset + text.length && latin1(bytes, offset, text.length) === text;
}

function latin1(bytes: Uint8Array, offset: number, length: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset, length).toString('latin1');
}

function readUint32BE(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) >>> 0) + (bytes[offset + 1]! << 16) + (bytes[offset + 2]! << 8) + bytes[offset + 3]!;
}

function readUint32LE(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset + 3]! << 24) >>> 0) + (bytes[offset + 2]! << 16) + (bytes[offset + 1]! << 8) + bytes[offset]!;
}
