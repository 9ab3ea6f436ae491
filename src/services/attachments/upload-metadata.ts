import { ChatError } from '../../errors.js';

/**
 * What a client says about a file when it starts an upload: the tus
 * Upload-Metadata pairs (already base64-decoded), checked and tidied. The
 * server trusts none of it for what matters (the type is sniffed, the size and
 * hash computed): the name is shown to others, so it is made harmless here.
 */
export interface UploadMetadata {
  /** A base name (no directories, no control characters) of at most 255 UTF-8 bytes; '' when none was given. */
  readonly name: string;
  /** The type the client declared (a hint only; the server sniffs the content). '' when none. */
  readonly declaredType: string;
  readonly encrypted: boolean;
  readonly keepMetadata: boolean;
  readonly durationMs: number | null;
}

export const MAX_NAME_BYTES = 255;
const MAX_TYPE_LENGTH = 255;
/** A week of audio or video: anything longer is a client's mistake. */
const MAX_DURATION_MS = 7 * 86_400_000;

/** Reads the known keys of `pairs` (unknown keys are ignored, as tus allows); a bad value is `invalid_upload`, naming the key. */
export function readUploadMetadata(pairs: ReadonlyMap<string, string>): UploadMetadata {
  return {
    name: fileName(pairs.get('filename') ?? pairs.get('name') ?? ''),
    declaredType: declaredType(pairs.get('filetype') ?? pairs.get('type') ?? ''),
    encrypted: flag(pairs, 'encrypted'),
    keepMetadata: flag(pairs, 'keep_metadata'),
    durationMs: duration(pairs.get('duration')),
  };
}

/**
 * The last path segment of `raw` (either slash), without control characters
 * or bidirectional overrides, trimmed, cut to MAX_NAME_BYTES on a character
 * boundary; '.' and '..' become ''.
 */
export function fileName(raw: string): string {
  const base = raw.split(/[/\\]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const clean = base.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g, '').trim();
  if (clean === '.' || clean === '..') return '';
  let name = '';
  let bytes = 0;
  for (const character of clean) {
    const size = Buffer.byteLength(character, 'utf8');
    if (bytes + size > MAX_NAME_BYTES) break;
    name += character;
    bytes += size;
  }
  return name.trim();
}

function declaredType(raw: string): string {
  const type = raw.trim().toLowerCase();
  // type/subtype with optional parameters, printable ASCII only: anything else is dropped, not refused (it is a hint).
  return type.length <= MAX_TYPE_LENGTH && /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(\s*;[\x20-\x7e]*)?$/.test(type) ? type : '';
}

function flag(pairs: ReadonlyMap<string, string>, key: string): boolean {
  const value = pairs.get(key);
  if (value === undefined || value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw new ChatError('invalid_upload', `Upload-Metadata ${key} must be "1" (or absent), got ${JSON.stringify(value.slice(0, 20))}`, { field: key });
}

function duration(value: string | undefined): number | null {
  if (value === undefined || value === '') return null;
  const ms = /^\d{1,12}$/.test(value) ? Number(value) : Number.NaN;
  if (!(ms <= MAX_DURATION_MS)) {
    throw new ChatError('invalid_upload', `Upload-Metadata duration must be a whole number of milliseconds up to ${MAX_DURATION_MS}, got ${JSON.stringify(value.slice(0, 20))}`, {
      field: 'duration',
    });
  }
  return ms;
}

/**
 * The tus Upload-Metadata header: comma-separated pairs "key base64value"
 * (the value may be absent). Keys are ASCII without spaces or commas and
 * appear once. Values are decoded as UTF-8.
 */
export function parseUploadMetadataHeader(header: string | null): Map<string, string> {
  const pairs = new Map<string, string>();
  if (header === null || header.trim() === '') return pairs;
  for (const part of header.split(',')) {
    const match = /^\s*([^\s,]+)(?:\s+([A-Za-z0-9+/]*={0,2}))?\s*$/.exec(part);
    if (!match?.[1]) throw new ChatError('invalid_upload', 'Upload-Metadata must be comma-separated "key base64value" pairs');
    const key = match[1];
    if (pairs.has(key)) throw new ChatError('invalid_upload', `Upload-Metadata names ${JSON.stringify(key.slice(0, 40))} twice`);
    const encoded = match[2] ?? '';
    if (encoded.length % 4 === 1) throw new ChatError('invalid_upload', `Upload-Metadata ${key} is not valid base64`);
    pairs.set(key, Buffer.from(encoded, 'base64').toString('utf8'));
  }
  return pairs;
}
