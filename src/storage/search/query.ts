/**
 * A search as the user typed it → what the engines look for. Pure. The user's
 * text never reaches an engine as query syntax: it is cut into words here, and
 * each engine quotes every word as a literal (SQLite: an FTS5 string; PostgreSQL:
 * a parameter to phraseto_tsquery) or escapes it for LIKE.
 */

/** At most this many words or substrings are looked for (the rest of a long query is ignored). */
export const MAX_TERMS = 16;

export type SearchPlan =
  /** Whole words, all of them, diacritics and case folded; the last one also as a prefix ("meet" finds "meeting"). */
  | { readonly kind: 'words'; readonly words: readonly string[] }
  /**
   * Substrings that must all occur in the text (case folded; diacritics where
   * the engine can). Chinese, Japanese, Korean and Thai are written without
   * spaces between words, so a run of them is looked for as it is, anywhere:
   * by trigrams from 3 characters, by a scan (LIKE) below. A query of
   * punctuation only is looked for literally the same way.
   */
  | { readonly kind: 'substrings'; readonly substrings: readonly string[] }
  /** Nothing to look for (blank). */
  | { readonly kind: 'nothing' };

/**
 * Scripts written without spaces between words (Thai, Lao, Myanmar, Hangul, Khmer, CJK marks,
 * Hiragana, Katakana, CJK ideographs and their extensions, halfwidth Katakana): a word index
 * holds a whole run of them as one token. The same ranges as the GLOB of SQLite's
 * message_search_unspaced view (migrations/0016_search.sql): keep the two in step.
 */
export const UNSPACED = /[\u{E01}-\u{EFF}\u{1000}-\u{109F}\u{1100}-\u{11FF}\u{1780}-\u{17FF}\u{3005}-\u{3007}\u{3041}-\u{30FF}\u{3131}-\u{318E}\u{31F0}-\u{31FF}\u{3400}-\u{4DBF}\u{4E00}-\u{9FFF}\u{AC00}-\u{D7AF}\u{F900}-\u{FAFF}\u{FF66}-\u{FF9F}\u{20000}-\u{2FFFF}]/u;

/** Whether `text` holds a character of a script written without spaces. */
export function hasUnspaced(text: string): boolean {
  return UNSPACED.test(text);
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });

export function planSearch(query: string): SearchPlan {
  const text = query.normalize('NFC').trim();
  if (text === '') return { kind: 'nothing' };
  const words: Array<{ word: string; start: number; end: number }> = [];
  for (const segment of segmenter.segment(text)) {
    if (segment.isWordLike) words.push({ word: segment.segment, start: segment.index, end: segment.index + segment.segment.length });
  }
  if (words.length === 0) return { kind: 'substrings', substrings: [text] };
  if (!words.some(({ word }) => UNSPACED.test(word))) return { kind: 'words', words: distinct(words.map(({ word }) => word)) };
  // Adjacent words of unspaced scripts are one run: 東京タワー is looked for whole, not as 東京 and タワー apart.
  const terms: string[] = [];
  let run: { text: string; end: number } | undefined;
  for (const { word, start, end } of words) {
    const unspaced = UNSPACED.test(word);
    if (unspaced && run && run.end === start) {
      run = { text: run.text + word, end };
      continue;
    }
    if (run) terms.push(run.text);
    run = undefined;
    if (unspaced) run = { text: word, end };
    else terms.push(word);
  }
  if (run) terms.push(run.text);
  return { kind: 'substrings', substrings: distinct(terms) };
}

function distinct(terms: readonly string[]): string[] {
  const seen = new Set<string>();
  const kept: string[] = [];
  for (const term of terms) {
    const key = term.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(term);
  }
  return kept.slice(0, MAX_TERMS);
}

/** Characters (code points), as the trigram index counts them. */
export function characters(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** `text` for SQL LIKE with ESCAPE '\': its %, _ and \ taken literally. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}

/** `text` as one FTS5 string: a literal, whatever it holds (FTS5 doubles a quote inside a string). */
export function ftsString(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}
