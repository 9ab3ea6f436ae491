/**
 * Snippets with marked hits, for local search results (the server makes its
 * own the same way: docs/protocol.md, `search`): plain text around the first
 * hit, about 160 characters, `…` where cut, and [start, end) UTF-16 offsets.
 */

const MARKS = /\p{M}+/gu;
const WORD_CHAR = /[\p{L}\p{N}_]/u;
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
const SNIPPET = 160;
/** Characters of context kept before the first hit. */
const LEAD = 50;

/** Lower case without diacritics ("Café" → "cafe"), as the word index compares. */
export function foldText(text: string): string {
  return text.normalize('NFD').replace(MARKS, '').toLowerCase();
}

/**
 * The folded text with, for each of its UTF-16 units, where the character it
 * came from starts and ends in the original (folding changes lengths).
 */
function foldWithOffsets(text: string): { folded: string; from: number[]; to: number[] } {
  let folded = '';
  const from: number[] = [];
  const to: number[] = [];
  let offset = 0;
  for (const char of text) {
    const part = foldText(char);
    for (let unit = 0; unit < part.length; unit++) {
      from.push(offset);
      to.push(offset + char.length);
    }
    folded += part;
    offset += char.length;
  }
  return { folded, from, to };
}

/** Where the folded terms occur in `text` (a word term at the start of a word; a CJK term anywhere), merged, in order. */
export function hitsOf(text: string, terms: readonly string[]): Array<[number, number]> {
  const { folded, from, to } = foldWithOffsets(text);
  const hits: Array<[number, number]> = [];
  for (const term of terms) {
    if (term.length === 0) continue;
    const anywhere = CJK.test(term);
    for (let at = folded.indexOf(term); at >= 0; at = folded.indexOf(term, at + 1)) {
      if (!anywhere && at > 0 && WORD_CHAR.test(folded[at - 1] as string)) continue;
      hits.push([from[at] as number, to[at + term.length - 1] as number]);
    }
  }
  hits.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const merged: Array<[number, number]> = [];
  for (const hit of hits) {
    const last = merged[merged.length - 1];
    if (last && hit[0] <= last[1]) last[1] = Math.max(last[1], hit[1]);
    else merged.push([hit[0], hit[1]]);
  }
  return merged;
}

export function snippetOf(text: string, terms: readonly string[]): { snippet: string; highlights: Array<[number, number]> } {
  const hits = hitsOf(text, terms);
  const first = hits[0]?.[0] ?? 0;
  let start = text.length <= SNIPPET ? 0 : Math.max(0, Math.min(first - LEAD, text.length - SNIPPET));
  let end = Math.min(text.length, start + SNIPPET);
  // Never cut a surrogate pair in two.
  if (start > 0 && isLowSurrogate(text.charCodeAt(start))) start--;
  if (end < text.length && isLowSurrogate(text.charCodeAt(end))) end++;
  const lead = start > 0 ? '…' : '';
  const snippet = lead + text.slice(start, end) + (end < text.length ? '…' : '');
  const shift = lead.length - start;
  const highlights = hits
    .filter(([hitStart, hitEnd]) => hitStart >= start && hitEnd <= end)
    .map(([hitStart, hitEnd]): [number, number] => [hitStart + shift, hitEnd + shift]);
  return { snippet, highlights };
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
