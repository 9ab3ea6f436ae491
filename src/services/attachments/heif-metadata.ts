import type { ByteRange } from '../../storage/ports/blobs.js';

/**
 * Location data out of HEIF files (HEIC, AVIF) without decoding them
 * (docs/attachments.md, "Images"): sharp's prebuilt libvips cannot decode
 * HEVC, so an iPhone photo cannot be re-encoded the way other images are.
 * A HEIF file keeps its metadata as items of its own (ISO/IEC 23008-12): an
 * `Exif` item, and XMP as a `mime` item of type application/rdf+xml, each
 * stored at byte ranges the `iloc` box lists. Overwriting those ranges with
 * zeros removes the metadata and moves nothing, so every offset in the file
 * stays valid and the picture is untouched.
 *
 * Defensive: only the top-level box headers and the `meta` box are read, and
 * anything it does not fully understand — a size past its parent's end, an
 * iloc version or field size outside the standard, metadata built from other
 * items (construction_method ≠ 0) or in another file, an extent inside a box
 * header, `ftyp` or `meta` — is "unparsed", and nothing is changed.
 */

export type HeifStripOutcome =
  /** `items` Exif/XMP items were blanked (0: there were none). */
  | { readonly kind: 'stripped'; readonly items: number }
  /** The structure was not understood; the file is as it was. `reason` is for the log. */
  | { readonly kind: 'unparsed'; readonly reason: string };

export type HeifMetadataLocation =
  | { readonly kind: 'located'; readonly items: number; readonly ranges: readonly ByteRange[] }
  | { readonly kind: 'unparsed'; readonly reason: string };

/** Reads the inclusive byte range (never past the size it was given); a shorter answer counts as malformed. */
export type ReadRange = (range: ByteRange) => Promise<Uint8Array>;

/** The staged bytes as the upload service holds them: read in ranges, replaced whole (BlobStore.readStaged / rewriteStaged). */
export interface RewritableFile {
  readonly size: number;
  read(range: ByteRange): AsyncIterable<Uint8Array>;
  rewrite(chunks: AsyncIterable<Uint8Array>): Promise<number>;
}

/** A meta box larger than this is not read (real ones are a few KB; a grid photo's with hundreds of tiles, tens of KB). */
const MAX_META_BYTES = 16 * 1024 * 1024;
/** Top-level boxes visited at most (a HEIF file has three to five). */
const MAX_TOP_LEVEL_BOXES = 1024;
const XMP_TYPE = 'application/rdf+xml';

/** Blanks the metadata of the staged file: ranges found from its header, then the file rewritten as a stream with them zeroed. */
export async function stripHeifMetadata(file: RewritableFile): Promise<HeifStripOutcome> {
  const located = await locateHeifMetadata(async (range) => concat(file.read(range)), file.size);
  if (located.kind === 'unparsed') return located;
  // Nothing to blank: the file is left alone rather than copied to itself.
  if (located.ranges.length > 0) {
    const written = await file.rewrite(blankRanges(file.read({ start: 0, end: file.size - 1 }), located.ranges));
    if (written !== file.size) throw new Error(`HEIF metadata: rewrote ${written} bytes of ${file.size}`);
  }
  return { kind: 'stripped', items: located.items };
}

/** The same on bytes in memory, which are changed in place. */
export async function stripHeifMetadataInPlace(bytes: Uint8Array): Promise<HeifStripOutcome> {
  const located = await locateHeifMetadata(async ({ start, end }) => bytes.subarray(start, end + 1), bytes.length);
  if (located.kind === 'unparsed') return located;
  for (const { start, end } of located.ranges) bytes.fill(0, start, end + 1);
  return { kind: 'stripped', items: located.items };
}

/**
 * Where the Exif and XMP items' bytes are. Rejects only when `read` does;
 * every structural problem is an 'unparsed' answer.
 */
export async function locateHeifMetadata(read: ReadRange, size: number): Promise<HeifMetadataLocation> {
  try {
    const top = await topLevelBoxes(read, size);
    const metas = top.filter((box) => box.type === 'meta');
    if (metas.length !== 1) throw new Malformed(metas.length === 0 ? 'no meta box' : 'more than one meta box');
    const meta = metas[0] as Box;
    if (meta.end - meta.start > MAX_META_BYTES) throw new Malformed(`meta box of ${meta.end - meta.start} bytes`);
    const metaBytes = await readExactly(read, meta.start, meta.end);
    const items = metadataItems(metaBytes, meta.payload - meta.start);
    const ranges = items.flatMap((item) => item.extents);
    for (const range of ranges) checkExtent(range, top, size);
    return { kind: 'located', items: items.length, ranges };
  } catch (error) {
    if (error instanceof Malformed) return { kind: 'unparsed', reason: error.message };
    throw error;
  }
}

/** `chunks` as they come, the bytes within `ranges` (absolute, inclusive) replaced by zeros; the chunks given are not changed. */
export async function* blankRanges(chunks: AsyncIterable<Uint8Array>, ranges: readonly ByteRange[]): AsyncGenerator<Uint8Array> {
  let position = 0;
  for await (const chunk of chunks) {
    const chunkEnd = position + chunk.length;
    let out = chunk;
    for (const { start, end } of ranges) {
      const from = Math.max(start, position);
      const to = Math.min(end + 1, chunkEnd);
      if (from >= to) continue;
      if (out === chunk) out = Uint8Array.from(chunk);
      out.fill(0, from - position, to - position);
    }
    position = chunkEnd;
    yield out;
  }
}

/** A structure this parser does not accept: the whole file is then "unparsed". */
class Malformed extends Error {}

interface Box {
  readonly type: string;
  /** Absolute offsets: where its header starts, where its payload starts, one past its end. */
  readonly start: number;
  readonly payload: number;
  readonly end: number;
}

interface MetadataItem {
  readonly id: number;
  extents: ByteRange[];
}

/** Every top-level box, from its header alone (16 bytes read per box, 32 for a uuid box). */
async function topLevelBoxes(read: ReadRange, size: number): Promise<Box[]> {
  const boxes: Box[] = [];
  let offset = 0;
  while (offset < size) {
    if (boxes.length === MAX_TOP_LEVEL_BOXES) throw new Malformed(`more than ${MAX_TOP_LEVEL_BOXES} top-level boxes`);
    const header = await readExactly(read, offset, Math.min(size, offset + 32));
    const box = boxAt(header, 0, size - offset, true);
    boxes.push({ type: box.type, start: offset + box.start, payload: offset + box.payload, end: offset + box.end });
    offset += box.end;
  }
  if (boxes[0]?.type !== 'ftyp') throw new Malformed('the file does not start with ftyp');
  return boxes;
}

/**
 * The box whose header is at `offset` in `bytes`, which must end by `limit`
 * (its parent's end). Size 0 ("to the end of the file") only at top level.
 */
function boxAt(bytes: Uint8Array, offset: number, limit: number, topLevel: boolean): Box {
  // The header is read from what `bytes` holds (at top level, only the header itself); the size is checked against `limit`.
  const cursor = new Cursor(bytes, offset, Math.min(limit, bytes.length));
  const size32 = cursor.u32();
  const type = cursor.fourcc();
  let size: number;
  if (size32 === 1) size = cursor.u64();
  else if (size32 === 0 && topLevel) size = limit - offset;
  else size = size32;
  if (type === 'uuid') cursor.skip(16);
  const payload = cursor.position;
  if (size < payload - offset) throw new Malformed(`box '${printable(type)}' at ${offset} has size ${size}, less than its header`);
  if (offset + size > limit) throw new Malformed(`box '${printable(type)}' at ${offset} (size ${size}) ends past its parent`);
  return { type, start: offset, payload, end: offset + size };
}

/** The child boxes of the box whose payload is bytes[from, to). */
function children(bytes: Uint8Array, from: number, to: number): Box[] {
  const boxes: Box[] = [];
  for (let offset = from; offset < to; ) {
    const box = boxAt(bytes, offset, to, false);
    boxes.push(box);
    offset = box.end;
  }
  return boxes;
}

/** The Exif and XMP items of a meta box (bytes: the whole box; payload: where its FullBox header starts), with their extents. */
function metadataItems(meta: Uint8Array, payload: number): MetadataItem[] {
  const header = new Cursor(meta, payload, meta.length);
  if (header.u32() !== 0) throw new Malformed('meta is not a version 0 FullBox');
  const boxes = children(meta, header.position, meta.length);
  const only = (type: string): Box | undefined => {
    const found = boxes.filter((box) => box.type === type);
    if (found.length > 1) throw new Malformed(`more than one ${type} box in meta`);
    return found[0];
  };
  const iinf = only('iinf');
  const iloc = only('iloc');
  const items = iinf ? metadataItemIds(meta, iinf).map((id): MetadataItem => ({ id, extents: [] })) : [];
  if (items.length === 0) return [];
  if (!iloc) throw new Malformed('Exif or XMP items but no iloc box');
  const located = readLocations(meta, iloc, new Map(items.map((item) => [item.id, item])));
  const missing = items.find((item) => !located.has(item.id));
  if (missing) throw new Malformed(`item ${missing.id} has no location`);
  return items;
}

/** The ids of the Exif and XMP items iinf lists. */
function metadataItemIds(meta: Uint8Array, iinf: Box): number[] {
  const cursor = new Cursor(meta, iinf.payload, iinf.end);
  const version = cursor.u8();
  cursor.skip(3);
  const count = version === 0 ? cursor.u16() : cursor.u32();
  const entries = children(meta, cursor.position, iinf.end).filter((box) => box.type === 'infe');
  if (entries.length !== count) throw new Malformed(`iinf says ${count} items and holds ${entries.length}`);
  const ids: number[] = [];
  for (const entry of entries) {
    const info = itemInfo(meta, entry);
    if (ids.includes(info.id)) throw new Malformed(`item ${info.id} is listed twice`);
    if (info.type === 'Exif' || (info.type === 'mime' && info.contentType === XMP_TYPE)) ids.push(info.id);
  }
  return ids;
}

/** One infe (ItemInfoEntry, ISO/IEC 14496-12 8.11.6). Versions 0 and 1 have no type: their content type says what they are. */
function itemInfo(meta: Uint8Array, infe: Box): { id: number; type: string; contentType?: string } {
  const cursor = new Cursor(meta, infe.payload, infe.end);
  const version = cursor.u8();
  cursor.skip(3);
  if (version > 3) throw new Malformed(`infe version ${version}`);
  const id = version === 3 ? cursor.u32() : cursor.u16();
  cursor.skip(2); // item_protection_index: a protected item is blanked all the same.
  if (version < 2) {
    cursor.cstring(); // item_name
    return { id, type: 'mime', contentType: mediaType(cursor.cstring()) };
  }
  const type = cursor.fourcc();
  cursor.cstring(); // item_name
  if (type !== 'mime') return { id, type };
  return { id, type, contentType: mediaType(cursor.cstring()) };
}

/**
 * iloc (ISO/IEC 14496-12 8.11.3), versions 0–2: fills in the extents of the
 * items in `wanted`, as absolute byte ranges; returns the ids it saw.
 */
function readLocations(meta: Uint8Array, iloc: Box, wanted: ReadonlyMap<number, MetadataItem>): Set<number> {
  const cursor = new Cursor(meta, iloc.payload, iloc.end);
  const version = cursor.u8();
  cursor.skip(3);
  if (version > 2) throw new Malformed(`iloc version ${version}`);
  const sizes = cursor.u8();
  const more = cursor.u8();
  const offsetSize = fieldSize(sizes >> 4, 'offset_size');
  const lengthSize = fieldSize(sizes & 0x0f, 'length_size');
  const baseOffsetSize = fieldSize(more >> 4, 'base_offset_size');
  const indexSize = version === 0 ? 0 : fieldSize(more & 0x0f, 'index_size');
  const count = version < 2 ? cursor.u16() : cursor.u32();
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) {
    const id = version < 2 ? cursor.u16() : cursor.u32();
    const constructionMethod = version === 0 ? 0 : cursor.u16() & 0x0f;
    const dataReference = cursor.u16();
    const baseOffset = cursor.uint(baseOffsetSize);
    const extentCount = cursor.u16();
    const item = wanted.get(id);
    if (item) {
      if (seen.has(id)) throw new Malformed(`item ${id} is located twice`);
      // Other items (an iPhone photo's grid in idat) may be built any way: only the ones blanked must be plain bytes of this file.
      if (constructionMethod !== 0) throw new Malformed(`item ${id} has construction_method ${constructionMethod}`);
      if (dataReference !== 0) throw new Malformed(`item ${id} is in another file (data_reference_index ${dataReference})`);
    }
    seen.add(id);
    for (let e = 0; e < extentCount; e++) {
      cursor.uint(indexSize);
      const offset = cursor.uint(offsetSize);
      const length = cursor.uint(lengthSize);
      if (!item) continue;
      // Length 0 means "the whole referenced data": not a range this can bound.
      if (length === 0) throw new Malformed(`item ${id} has an extent of length 0`);
      const start = baseOffset + offset;
      if (!Number.isSafeInteger(start + length)) throw new Malformed(`item ${id} has an extent past 2^53`);
      item.extents.push({ start, end: start + length - 1 });
    }
  }
  return seen;
}

/** An extent must lie inside the payload of one top-level box that is neither ftyp nor meta (in practice mdat). */
function checkExtent(range: ByteRange, top: readonly Box[], size: number): void {
  if (range.end >= size) throw new Malformed(`an extent (${range.start}–${range.end}) ends past the file (${size} bytes)`);
  const holder = top.find((box) => box.start <= range.start && range.start < box.end);
  if (!holder || range.start < holder.payload || range.end >= holder.end) {
    throw new Malformed(`an extent (${range.start}–${range.end}) crosses a box header`);
  }
  if (holder.type === 'ftyp' || holder.type === 'meta') throw new Malformed(`an extent (${range.start}–${range.end}) lies in the ${holder.type} box`);
}

function fieldSize(value: number, name: string): 0 | 4 | 8 {
  if (value === 0 || value === 4 || value === 8) return value;
  throw new Malformed(`iloc ${name} ${value}`);
}

/** The media type without parameters, lower case ("application/rdf+xml; charset=utf-8" → "application/rdf+xml"). */
function mediaType(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

function printable(type: string): string {
  return type.replace(/[^\x20-\x7e]/g, '?');
}

async function readExactly(read: ReadRange, start: number, end: number): Promise<Uint8Array> {
  if (end <= start) return new Uint8Array(0);
  const bytes = await read({ start, end: end - 1 });
  if (bytes.length !== end - start) throw new Malformed(`read ${bytes.length} bytes at ${start}, expected ${end - start}`);
  return bytes;
}

async function concat(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Big-endian reads that never pass `limit`: running out is Malformed, not a RangeError. */
class Cursor {
  constructor(
    private readonly bytes: Uint8Array,
    public position: number,
    private readonly limit: number,
  ) {}

  private take(count: number): number {
    const at = this.position;
    if (at + count > this.limit) throw new Malformed(`a field at ${at} runs past its box`);
    this.position += count;
    return at;
  }

  skip(count: number): void {
    this.take(count);
  }

  u8(): number {
    return this.bytes[this.take(1)] as number;
  }

  u16(): number {
    const at = this.take(2);
    return ((this.bytes[at] as number) << 8) | (this.bytes[at + 1] as number);
  }

  u32(): number {
    const at = this.take(4);
    return (((this.bytes[at] as number) << 24) | ((this.bytes[at + 1] as number) << 16) | ((this.bytes[at + 2] as number) << 8) | (this.bytes[at + 3] as number)) >>> 0;
  }

  u64(): number {
    const high = this.u32();
    const low = this.u32();
    const value = high * 2 ** 32 + low;
    if (!Number.isSafeInteger(value)) throw new Malformed('a 64-bit size past 2^53');
    return value;
  }

  /** An unsigned integer of 0, 4 or 8 bytes (iloc's variable fields; 0 bytes is the value 0). */
  uint(size: 0 | 4 | 8): number {
    return size === 0 ? 0 : size === 4 ? this.u32() : this.u64();
  }

  fourcc(): string {
    const at = this.take(4);
    return String.fromCharCode(...this.bytes.subarray(at, at + 4));
  }

  /** A NUL-terminated UTF-8 string; its terminator must be inside the box. */
  cstring(): string {
    const end = this.bytes.subarray(0, this.limit).indexOf(0, this.position);
    if (end === -1) throw new Malformed(`a string at ${this.position} has no terminator inside its box`);
    const text = new TextDecoder().decode(this.bytes.subarray(this.position, end));
    this.position = end + 1;
    return text;
  }
}
