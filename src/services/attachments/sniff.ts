/**
 * What a file is, from its first bytes (magic numbers), never from its name or
 * the type the client declared: the attachment's `mime`, what allowed_types is
 * checked against, and the Content-Type it is served with. A type this does
 * not recognise is application/octet-stream, which is always served as a
 * download.
 */

/**
 * How many leading bytes `sniff` looks at: give it this many (fewer only when
 * the file is shorter). ISO-BMFF brand lists, Matroska's DocType and Ogg's
 * first packet are within the first hundred bytes; the rest is for text, which
 * is called UTF-8 only when this much of it decodes as such.
 */
export const SNIFF_BYTES = 4096;

export function sniff(head: Uint8Array): string {
  const bytes = head.length > SNIFF_BYTES ? head.subarray(0, SNIFF_BYTES) : head;
  return sniffBinary(bytes) ?? (looksLikeText(bytes) ? textType(bytes) : 'application/octet-stream');
}

/**
 * Whether `mime` is among `allowed` ([attachments] allowed_types): a
 * comma-separated list of exact types, `type/*`, or `*` (any). Parameters
 * (`; charset=…`) and case are ignored.
 */
export function typeAllowed(mime: string, allowed: string): boolean {
  const type = essence(mime);
  return allowed.split(',').some((entry) => {
    const pattern = essence(entry);
    if (pattern === '*' || pattern === '*/*') return true;
    if (pattern.endsWith('/*')) return type.startsWith(pattern.slice(0, -1));
    return pattern !== '' && pattern === type;
  });
}

function essence(mime: string): string {
  return (mime.split(';')[0] ?? '').trim().toLowerCase();
}

function ascii(bytes: Uint8Array, offset: number, text: string): boolean {
  if (offset + text.length > bytes.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[offset + i] !== text.charCodeAt(i)) return false;
  return true;
}

function startsWith(bytes: Uint8Array, prefix: readonly number[], offset = 0): boolean {
  if (offset + prefix.length > bytes.length) return false;
  return prefix.every((value, i) => bytes[offset + i] === value);
}

function sniffBinary(b: Uint8Array): string | undefined {
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a')) return 'image/gif';
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP')) return 'image/webp';
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WAVE')) return 'audio/wav';
  if (ascii(b, 4, 'ftyp')) return isoMediaType(b);
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'image/tiff';
  if (isBmp(b)) return 'image/bmp';
  if (startsWith(b, [0x1a, 0x45, 0xdf, 0xa3])) return matroskaType(b);
  if (ascii(b, 0, 'OggS')) return oggType(b);
  if (ascii(b, 0, 'fLaC')) return 'audio/flac';
  if (ascii(b, 0, 'ID3')) return 'audio/mpeg';
  if (ascii(b, 0, '%PDF-')) return 'application/pdf';
  if (startsWith(b, [0x50, 0x4b, 0x03, 0x04]) || startsWith(b, [0x50, 0x4b, 0x05, 0x06])) return 'application/zip';
  if (startsWith(b, [0x1f, 0x8b, 0x08])) return 'application/gzip';
  return audioFrameType(b);
}

/** ISO base media files (MP4, QuickTime, 3GP, M4A, HEIF, AVIF): the major brand, then the compatible ones, decide. */
function isoMediaType(b: Uint8Array): string {
  const boxSize = ((b[0] ?? 0) << 24) | ((b[1] ?? 0) << 16) | ((b[2] ?? 0) << 8) | (b[3] ?? 0);
  const brands = [brandAt(b, 8)];
  for (let offset = 16; offset + 4 <= Math.min(boxSize >>> 0, b.length); offset += 4) brands.push(brandAt(b, offset));
  const has = (...names: string[]) => brands.some((brand) => names.includes(brand));
  const major = brands[0] ?? '';
  if (['avif', 'avis'].includes(major)) return 'image/avif';
  if (['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx'].includes(major)) return 'image/heic';
  if (major === 'qt  ') return 'video/quicktime';
  if (['M4A ', 'M4B ', 'M4P '].includes(major)) return 'audio/mp4';
  if (major.startsWith('3g2')) return 'video/3gpp2';
  if (major.startsWith('3gp')) return 'video/3gpp';
  // Generic majors (mif1, msf1, isom…) name their real kind among the compatible brands.
  if (has('avif', 'avis')) return 'image/avif';
  if (has('heic', 'heix', 'heim', 'heis', 'hevc', 'hevx')) return 'image/heic';
  if (has('mif1', 'msf1')) return 'image/heif';
  if (has('M4A ')) return 'audio/mp4';
  return 'video/mp4';
}

function brandAt(b: Uint8Array, offset: number): string {
  return offset + 4 <= b.length ? String.fromCharCode(...b.subarray(offset, offset + 4)) : '';
}

/** "BM" alone is two letters of text: the DIB header size at offset 14 must be one of the real ones too. */
function isBmp(b: Uint8Array): boolean {
  if (!ascii(b, 0, 'BM') || b.length < 18) return false;
  const dibSize = (b[14] ?? 0) | ((b[15] ?? 0) << 8) | ((b[16] ?? 0) << 16) | ((b[17] ?? 0) << 24);
  return [12, 40, 52, 56, 64, 108, 124].includes(dibSize);
}

/** EBML: the DocType element (0x42 0x82, a one-byte size) says webm or matroska. */
function matroskaType(b: Uint8Array): string {
  for (let i = 4; i + 3 < Math.min(b.length, 64); i++) {
    if (b[i] === 0x42 && b[i + 1] === 0x82) {
      const size = (b[i + 2] ?? 0) & 0x7f;
      return ascii(b, i + 3, 'webm') && size === 4 ? 'video/webm' : 'video/x-matroska';
    }
  }
  return 'video/x-matroska';
}

/** Ogg: the first page's packet (at 28, after a one-segment table) names the codec. */
function oggType(b: Uint8Array): string {
  const segments = b[26] ?? 0;
  const packet = 27 + segments;
  if (ascii(b, packet, 'OpusHead') || ascii(b, packet + 1, 'vorbis') || ascii(b, packet, '\x7fFLAC') || ascii(b, packet, 'Speex   ')) {
    return 'audio/ogg';
  }
  if (ascii(b, packet + 1, 'theora')) return 'video/ogg';
  return 'application/ogg';
}

/**
 * MPEG audio without an ID3 tag: an 11-bit frame sync, then a header whose
 * fields are valid. Layer bits 00 are AAC in ADTS framing.
 */
function audioFrameType(b: Uint8Array): string | undefined {
  const [b0 = 0, b1 = 0, b2 = 0] = b;
  if (b.length < 4 || b0 !== 0xff || (b1 & 0xe0) !== 0xe0) return undefined;
  const version = (b1 >> 3) & 0x03;
  const layer = (b1 >> 1) & 0x03;
  if (layer === 0) return version === 0 || version === 2 ? 'audio/aac' : undefined;
  if (version === 1) return undefined;
  const bitrate = b2 >> 4;
  const sampleRate = (b2 >> 2) & 0x03;
  if (bitrate === 0x0f || bitrate === 0 || sampleRate === 0x03) return undefined;
  return 'audio/mpeg';
}

/**
 * Valid UTF-8 with no control characters but tab, line feed, form feed,
 * carriage return and escape. A sequence cut by the end of `b` is allowed
 * (the head ends mid-character); NUL never is.
 */
function looksLikeText(b: Uint8Array): boolean {
  if (b.length === 0) return false;
  let i = 0;
  while (i < b.length) {
    const byte = b[i] as number;
    if (byte < 0x80) {
      if (byte < 0x20 && ![0x09, 0x0a, 0x0c, 0x0d, 0x1b].includes(byte)) return false;
      if (byte === 0x7f) return false;
      i++;
      continue;
    }
    const length = byte >= 0xc2 && byte <= 0xdf ? 2 : byte >= 0xe0 && byte <= 0xef ? 3 : byte >= 0xf0 && byte <= 0xf4 ? 4 : 0;
    if (length === 0) return false;
    for (let k = 1; k < length; k++) {
      if (i + k >= b.length) return b.length === SNIFF_BYTES;
      const next = b[i + k] as number;
      if ((next & 0xc0) !== 0x80) return false;
      if (k === 1 && !secondByteValid(byte, next)) return false;
    }
    i += length;
  }
  return true;
}

/** The second-byte ranges that exclude overlong forms, surrogates and code points past U+10FFFF. */
function secondByteValid(first: number, second: number): boolean {
  if (first === 0xe0) return second >= 0xa0;
  if (first === 0xed) return second <= 0x9f;
  if (first === 0xf0) return second >= 0x90;
  if (first === 0xf4) return second <= 0x8f;
  return true;
}

/** Text is plain unless it is an SVG document (XML whose root is <svg>): that is an image a browser would run scripts in. */
function textType(b: Uint8Array): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(b).replace(/^\uFEFF/, '');
  const start = text.replace(/^\s*(<\?xml[^>]*\?>\s*)?((<!--[\s\S]*?-->|<!DOCTYPE[^>]*>)\s*)*/i, '');
  return /^<svg[\s>/]/i.test(start) ? 'image/svg+xml' : 'text/plain';
}

/**
 * Containers that hold sound alone as readily as pictures (WebM, MP4, Ogg)
 * sniff as video from their first bytes: a recorder's voice message is
 * `video/webm` by its header. The client's declared type may narrow such a
 * video to audio of the same container, and nothing else: it can never
 * change the container, nor make anything an image or a document.
 */
const AUDIO_OF_CONTAINER: Readonly<Record<string, readonly string[]>> = {
  'video/webm': ['audio/webm'],
  'video/mp4': ['audio/mp4', 'audio/x-m4a', 'audio/m4a'],
  'video/ogg': ['audio/ogg'],
};

export function narrowByDeclared(sniffed: string, declared: string): string {
  const declaredType = declared.split(';')[0]?.trim().toLowerCase() ?? '';
  const audio = AUDIO_OF_CONTAINER[sniffed];
  if (!audio?.includes(declaredType)) return sniffed;
  return declaredType === 'audio/webm' || declaredType === 'audio/ogg' ? declaredType : 'audio/mp4';
}
