/**
 * The Range header of a download (RFC 9110 §14), reduced to what chatd
 * serves: one byte range. Several ranges are answered with the whole file
 * (200), as the RFC allows; a header that is not a valid byte range is
 * ignored (200 too); a range that starts past the end is 416.
 */
export type RangeRequest =
  | { readonly kind: 'whole' }
  /** Inclusive, within the file. */
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' };

const WHOLE: RangeRequest = { kind: 'whole' };
const UNSATISFIABLE: RangeRequest = { kind: 'unsatisfiable' };

export function parseRange(header: string | null, size: number): RangeRequest {
  if (header === null) return WHOLE;
  const match = /^\s*bytes\s*=\s*(.*?)\s*$/i.exec(header);
  if (!match) return WHOLE; // another unit
  const spec = match[1] ?? '';
  if (spec.includes(',')) return WHOLE;
  // Any number of digits: a position past any file (1e20) is still a position, not a malformed range.
  const parts = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
  if (!parts) return WHOLE;
  const [, first = '', last = ''] = parts;
  if (first === '') {
    // bytes=-n: the last n bytes (all of them when n passes the size).
    if (last === '') return WHOLE;
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return WHOLE; // invalid: ignored
  if (start >= size) return UNSATISFIABLE;
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  return { kind: 'partial', start, end };
}

/** An entity tag list (If-None-Match) names `etag`, weakly compared as RFC 9110 says for If-None-Match, or is `*`. */
export function etagListMatches(header: string | null, etag: string): boolean {
  if (header === null) return false;
  const bare = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim() === '*' || bare(tag) === bare(etag));
}
