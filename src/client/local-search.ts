import type MiniSearch from 'minisearch';
import type { Options, SearchResult as MiniResult } from 'minisearch';
import type { ClientMessage } from './e2e-types.js';
import { foldText, snippetOf } from './search-snippet.js';

/**
 * The client's own index of the end-to-end encrypted messages it decrypted
 * (the server cannot search them: docs/search.md). MiniSearch over each
 * message's searchable text, the text folded like the server's word index
 * (case, diacritics), words from Intl.Segmenter, and runs of CJK characters
 * indexed as single characters and pairs so that a substring finds them.
 */

/** What a search result (the server's or a local one) is: the message, and a snippet with the hits marked. */
export interface SearchResult {
  readonly message: ClientMessage;
  /** Plain text around the first hit, up to about 160 characters, with `…` where cut. */
  readonly snippet: string;
  /** [start, end) UTF-16 offsets of the hits in `snippet`. */
  readonly highlights: ReadonlyArray<readonly [number, number]>;
  /** `server`: the server's search (plaintext threads); `local`: this device's index of decrypted messages. */
  readonly source: 'server' | 'local';
}

export interface SearchFilters {
  readonly threadId?: number;
  readonly senderId?: number;
  /** created_at bounds, ms: after < created_at < before. */
  readonly after?: number;
  readonly before?: number;
}

interface IndexedMessage {
  readonly id: number;
  readonly text: string;
  readonly message: ClientMessage;
}

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
const CJK_RUN = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]+/gu;
const WORD = /[\p{L}\p{N}\p{M}_]+/gu;
const segmenter = typeof Intl !== 'undefined' && 'Segmenter' in Intl ? new Intl.Segmenter(undefined, { granularity: 'word' }) : undefined;

/**
 * Words of a text (or a query); runs of CJK characters (written without spaces) as every character and every pair
 * of neighbours, across the word boundaries a segmenter would put in them, so that any substring is found.
 */
export function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const rest = text.replace(CJK_RUN, ' ');
  if (segmenter) {
    for (const segment of segmenter.segment(rest)) if (segment.isWordLike) tokens.push(segment.segment);
  } else {
    tokens.push(...(rest.match(WORD) ?? []));
  }
  for (const run of text.match(CJK_RUN) ?? []) {
    const chars = [...run];
    chars.forEach((char, index) => {
      tokens.push(char);
      if (index + 1 < chars.length) tokens.push(char + chars[index + 1]);
    });
  }
  return tokens;
}

const OPTIONS: Options<IndexedMessage> = {
  fields: ['text'],
  storeFields: ['message', 'text'],
  tokenize,
  processTerm: (term) => foldText(term) || null,
  searchOptions: {
    combineWith: 'AND',
    // The last word as a prefix (it is still being typed), like the server's.
    prefix: (_term, index, terms) => index === terms.length - 1,
  },
};

/**
 * The searchable text of a message, as the server's index takes it (search.md): `body.text` when the body is an
 * object with a string `text`, the body when it is a string, then the attachments' names.
 */
export function searchableText(message: Pick<ClientMessage, 'body' | 'attachments'>): string {
  const body = message.body as { text?: unknown } | string | null;
  const text = typeof body === 'string' ? body : typeof body === 'object' && body !== null && typeof body.text === 'string' ? body.text : '';
  const names = (message.attachments ?? []).map((file) => file.name).filter((name): name is string => typeof name === 'string' && name.length > 0);
  return [text, ...names].filter((part) => part.length > 0).join('\n');
}

type MiniSearchClass = typeof MiniSearch;

/** minisearch, loaded on first use (like libsodium: an app that never decrypts never loads it). */
let loading: Promise<MiniSearchClass> | undefined;
function loadMiniSearch(): Promise<MiniSearchClass> {
  loading ??= import('minisearch').then((module) => ((module as { default?: unknown }).default ?? module) as MiniSearchClass);
  return loading;
}

export class LocalSearch {
  private index: MiniSearch<IndexedMessage>;
  /** Bumped by every change: the client saves the index when it moved. */
  version = 0;

  private constructor(private readonly MiniSearch: MiniSearchClass, index?: MiniSearch<IndexedMessage>) {
    this.index = index ?? new MiniSearch(OPTIONS);
  }

  /**
   * A new index, or one saved with `serialise`; an unreadable one is dropped (it is rebuilt as messages are
   * decrypted again).
   */
  static async load(serialised?: string): Promise<LocalSearch> {
    const MiniSearch = await loadMiniSearch();
    if (serialised === undefined) return new LocalSearch(MiniSearch);
    try {
      return new LocalSearch(MiniSearch, MiniSearch.loadJSON(serialised, OPTIONS));
    } catch {
      return new LocalSearch(MiniSearch);
    }
  }

  get size(): number {
    return this.index.documentCount;
  }

  /**
   * Indexes a decrypted message (replacing what was there for its id): only an e2e message that opened `ok`, not
   * deleted, with some text. Anything else is taken out (an edit that did not open, a delete).
   */
  put(message: ClientMessage): void {
    const text = message.kind === 'e2e' && message.e2e?.status === 'ok' && !message.deleted && !message.change ? searchableText(message) : '';
    if (text.length === 0) return this.remove(message.id);
    if (this.index.has(message.id)) this.index.discard(message.id);
    this.index.add({ id: message.id, text, message });
    this.version++;
  }

  remove(messageId: number): void {
    if (!this.index.has(messageId)) return;
    this.index.discard(messageId);
    this.version++;
  }

  has(messageId: number): boolean {
    return this.index.has(messageId);
  }

  /** The indexed copy of a message, as it was last put. */
  message(messageId: number): ClientMessage | undefined {
    return this.index.getStoredFields(messageId)?.message as ClientMessage | undefined;
  }

  /** Every match, best first (ties: newest first), each with its snippet. */
  search(query: string, filters: SearchFilters = {}): SearchResult[] {
    const matches = this.index.search(query, { filter: (result) => accepts(result.message as ClientMessage, filters) });
    matches.sort((a, b) => b.score - a.score || (b.message as ClientMessage).created_at - (a.message as ClientMessage).created_at);
    return matches.map((match) => resultOf(match, query));
  }

  serialise(): string {
    return JSON.stringify(this.index);
  }

  clear(): void {
    this.index = new this.MiniSearch(OPTIONS);
    this.version++;
  }
}

function accepts(message: ClientMessage, filters: SearchFilters): boolean {
  if (filters.threadId !== undefined && message.thread_id !== filters.threadId) return false;
  if (filters.senderId !== undefined && message.sender_id !== filters.senderId) return false;
  if (filters.after !== undefined && message.created_at <= filters.after) return false;
  if (filters.before !== undefined && message.created_at >= filters.before) return false;
  return true;
}

function resultOf(match: MiniResult, query: string): SearchResult {
  const message = match.message as ClientMessage;
  // The query's words, and the index's terms that matched as completions of a word being typed (not of a CJK
  // character: every pair starting with it would be marked).
  const completions = match.terms.filter((term) => !CJK.test(term));
  const terms = [...new Set([...tokenize(query).map(foldText), ...completions])].filter((term) => term.length > 0);
  return { message, ...snippetOf(match.text as string, terms), source: 'local' };
}
