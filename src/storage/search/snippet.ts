import type { SearchPlan } from './query.js';

/**
 * The snippet of a search result: up to about SNIPPET_LENGTH characters of the
 * message's text around the first hit (… where cut), and where the hits are
 * in it. Pure; offsets are UTF-16 code units, [start, end), as JavaScript
 * strings count them. A hit is found the way the index folds text (case and
 * diacritics): "cafe" highlights "Café".
 */

export const SNIPPET_LENGTH = 160;
/** How much of the text before the first hit the snippet keeps. */
const LEAD = 50;

export interface Snippet {
  readonly snippet: string;
  readonly highlights: Array<[number, number]>;
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });

export function snippetOf(text: string, plan: SearchPlan): Snippet {
  const hits = merge(plan.kind === 'words' ? wordHits(text, plan.words) : plan.kind === 'substrings' ? substringHits(text, plan.substrings) : []);
  return cut(text.replace(/[\r\n\t]/g, ' '), hits);
}

/** One code point folded as the indexes fold it: diacritics dropped, lower case. */
function foldCodePoint(codePoint: string): string {
  return codePoint.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/** `text` folded, with the UTF-16 offset in `text` of each folded code unit's code point (and one past the end). */
function folded(text: string): { folded: string; starts: number[]; ends: number[] } {
  let out = '';
  const starts: number[] = [];
  const ends: number[] = [];
  let offset = 0;
  for (const codePoint of text) {
    const fold = foldCodePoint(codePoint);
    for (let i = 0; i < fold.length; i++) {
      starts.push(offset);
      ends.push(offset + codePoint.length);
    }
    out += fold;
    offset += codePoint.length;
  }
  return { folded: out, starts, ends };
}

function fold(text: string): string {
  return folded(text).folded;
}

/** Words of the text equal to a query word (the last one: starting with it). */
function wordHits(text: string, words: readonly string[]): Array<[number, number]> {
  const whole = new Set(words.slice(0, -1).map(fold));
  const prefix = fold(words.at(-1) ?? '');
  const hits: Array<[number, number]> = [];
  for (const segment of segmenter.segment(text)) {
    if (!segment.isWordLike) continue;
    const word = fold(segment.segment);
    if (whole.has(word) || (prefix !== '' && word.startsWith(prefix))) hits.push([segment.index, segment.index + segment.segment.length]);
  }
  return hits;
}

/** Every place each substring occurs, case and diacritics folded. */
function substringHits(text: string, substrings: readonly string[]): Array<[number, number]> {
  const map = folded(text);
  const hits: Array<[number, number]> = [];
  for (const substring of substrings) {
    const needle = fold(substring);
    if (needle === '') continue;
    for (let at = map.folded.indexOf(needle); at !== -1; at = map.folded.indexOf(needle, at + needle.length)) {
      hits.push([map.starts[at] as number, map.ends[at + needle.length - 1] as number]);
    }
  }
  return hits;
}

/** Sorted, overlapping or touching ranges joined. */
function merge(hits: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...hits].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged: Array<[number, number]> = [];
  for (const [start, end] of sorted) {
    const last = merged.at(-1);
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

function cut(text: string, hits: Array<[number, number]>): Snippet {
  if (text.length <= SNIPPET_LENGTH) return { snippet: text, highlights: hits };
  const first = hits[0];
  let start = first ? Math.max(0, first[0] - LEAD) : 0;
  // Start at a word when one begins shortly after the cut, and never inside a surrogate pair.
  if (start > 0 && first) {
    const space = text.slice(start, first[0]).search(/\s\S/);
    if (space !== -1 && space < 20) start += space + 1;
  }
  if (isLowSurrogate(text, start)) start++;
  let end = Math.min(text.length, start + SNIPPET_LENGTH);
  if (end < text.length) {
    const space = text.slice(Math.max(first?.[1] ?? start, end - 20), end).search(/\s\S*$/);
    if (space !== -1) end = Math.max(first?.[1] ?? start, end - 20) + space;
    if (isLowSurrogate(text, end)) end--;
  }
  const before = start > 0 ? '…' : '';
  const after = end < text.length ? '…' : '';
  const shift = before.length - start;
  const highlights = hits
    .filter(([hitStart, hitEnd]) => hitEnd > start && hitStart < end)
    .map(([hitStart, hitEnd]): [number, number] => [Math.max(hitStart, start) + shift, Math.min(hitEnd, end) + shift]);
  return { snippet: `${before}${text.slice(start, end)}${after}`, highlights };
}

function isLowSurrogate(text: string, index: number): boolean {
  const code = text.charCodeAt(index);
  return code >= 0xdc00 && code <= 0xdfff;
}
