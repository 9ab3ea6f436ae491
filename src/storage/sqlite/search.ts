import type Database from 'better-sqlite3';
import type { MessageRow } from '../repositories/messages.js';
import { type SearchIndexCheck, type SearchInput, type SearchPage, type SearchStorage, decodeSearchCursor, nextSearchCursor } from '../ports/search.js';
import { type SearchPlan, characters, escapeLike, ftsString, hasUnspaced, planSearch } from '../search/query.js';
import { snippetOf } from '../search/snippet.js';
import { searchableText } from '../search/text.js';
import type { Store } from '../store.js';
import { toStoredMessage } from './append.js';

/** The two FTS5 indexes of migrations/0016_search.sql, each over its view (its external content). */
const INDEXES = ['message_words', 'message_trigrams'] as const;
type IndexName = (typeof INDEXES)[number];
const CONTENT: Record<IndexName, string> = { message_words: 'message_search_text', message_trigrams: 'message_search_unspaced' };

/** How a plan is looked up: an index to MATCH (or none: a scan of the user's threads) and substrings to LIKE. */
interface Shape {
  readonly index: IndexName | undefined;
  readonly match: string | undefined;
  readonly likes: string[];
}

function shapeOf(plan: Exclude<SearchPlan, { kind: 'nothing' }>): Shape {
  if (plan.kind === 'words') {
    const quoted = plan.words.map(ftsString);
    // The last word is also a prefix: "meet" finds "meeting" (a quoted string followed by * is a prefix phrase).
    return { index: 'message_words', match: quoted.map((word, i) => (i === quoted.length - 1 ? `${word} *` : word)).join(' AND '), likes: [] };
  }
  // Trigrams find substrings of 3 characters or more, and index only the messages with a character of an
  // unspaced script (message_search_unspaced): other terms are looked for with LIKE among what they match,
  // or among the user's messages when no term can go to the trigrams.
  const trigrams = (term: string) => characters(term) >= 3 && hasUnspaced(term);
  const long = plan.substrings.filter(trigrams);
  const short = plan.substrings.filter((term) => !trigrams(term));
  return { index: long.length > 0 ? 'message_trigrams' : undefined, match: long.length > 0 ? long.map(ftsString).join(' AND ') : undefined, likes: short.map((term) => `%${escapeLike(term)}%`) };
}

/**
 * The search as one statement. Visibility is in the SQL: the user's
 * memberships (current or past) bound the seqs, hidden messages are left
 * out, and the view holds only content messages of kind 'text' that are not
 * deleted (so never e2e, system or change rows). Best match first (bm25),
 * then newest.
 */
function searchSql(shape: Shape): string {
  const from = shape.index ? `${shape.index} JOIN message_search_text s ON s.id = ${shape.index}.rowid` : 'message_search_text s';
  const likes = shape.likes.map((_, i) => `AND s.text LIKE @like${i} ESCAPE '\\'`).join(' ');
  return `
SELECT m.*, s.text AS search_text
  FROM ${from}
  JOIN thread_members tm ON tm.thread_id = s.thread_id AND tm.user_id = @user
  JOIN messages m ON m.id = s.id
 WHERE ${shape.index ? `${shape.index} MATCH @match AND` : ''}
       s.seq > tm.joined_seq AND (tm.left_seq IS NULL OR s.seq <= tm.left_seq)
   AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = @user AND h.message_id = s.id)
   AND (@thread IS NULL OR s.thread_id = @thread)
   AND (@sender IS NULL OR s.sender_user_id = @sender)
   AND (@after IS NULL OR s.created_at > @after)
   AND (@before IS NULL OR s.created_at < @before)
   ${likes}
 ORDER BY ${shape.index ? `bm25(${shape.index}),` : ''} s.id DESC
 LIMIT @limit OFFSET @offset`;
}

type Row = MessageRow & { readonly search_text: string };

/** SearchStorage on SQLite: FTS5, kept by triggers in each message's own transaction. */
export class SqliteSearchStorage implements SearchStorage {
  /** One prepared statement per shape (index, number of LIKEs): a handful at most. */
  private readonly statements = new Map<string, Database.Statement<Record<string, unknown>, Row>>();

  /** Only the database and its transactions: `chatd db check` builds one on a database of any schema, without the repositories. */
  constructor(private readonly store: Pick<Store, 'db' | 'read' | 'transaction'>) {}

  async search(input: SearchInput): Promise<SearchPage> {
    const plan = planSearch(input.query);
    const offset = input.cursor === undefined ? 0 : decodeSearchCursor(input.cursor);
    if (offset === undefined) throw new Error('search: a cursor this server did not make (the service checks it first)');
    if (plan.kind === 'nothing') return { results: [], nextCursor: null };
    const shape = shapeOf(plan);
    const key = `${shape.index ?? 'scan'}:${shape.likes.length}`;
    let statement = this.statements.get(key);
    if (!statement) {
      statement = this.store.db.prepare<Record<string, unknown>, Row>(searchSql(shape));
      this.statements.set(key, statement);
    }
    const parameters: Record<string, unknown> = {
      user: input.userId,
      thread: input.threadId ?? null,
      sender: input.senderId ?? null,
      after: input.after ?? null,
      before: input.before ?? null,
      limit: input.limit + 1,
      offset,
    };
    if (shape.match !== undefined) parameters.match = shape.match;
    shape.likes.forEach((like, i) => (parameters[`like${i}`] = like));
    const rows = this.store.read(() => statement.all(parameters));
    const page = rows.slice(0, input.limit);
    return {
      results: page.map((row) => ({ message: toStoredMessage(row), ...snippetOf(searchableText(row.body, row.attachments), plan) })),
      nextCursor: nextSearchCursor(offset, input.limit, rows.length > input.limit),
    };
  }

  async check(options: { thorough?: boolean } = { thorough: true }): Promise<SearchIndexCheck> {
    const { db } = this.store;
    const problems: string[] = [];
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    const searchable = count('SELECT count(*) AS n FROM message_search_text');
    let indexed = 0;
    for (const index of INDEXES) {
      if (options.thorough) {
        try {
          // rank 1: also compare the index with its content (the view), not only its own structure (which
          // PRAGMA integrity_check reads without the write lock).
          db.prepare(`INSERT INTO ${index} (${index}, rank) VALUES ('integrity-check', 1)`).run();
        } catch (error) {
          problems.push(`${index}: ${(error as Error).message}`);
        }
      }
      const entries = count(`SELECT count(*) AS n FROM ${index}_docsize`);
      const expected = index === 'message_words' ? searchable : count(`SELECT count(*) AS n FROM ${CONTENT[index]}`);
      if (index === 'message_words') indexed = entries;
      if (entries !== expected) problems.push(`${index} has ${entries} entries for ${expected} messages`);
    }
    return { ok: problems.length === 0, searchable, indexed, problems };
  }

  async rebuild(onProgress: (done: number, total: number) => void = () => {}): Promise<{ indexed: number }> {
    const { db } = this.store;
    return this.store.transaction(() => {
      const total = (db.prepare('SELECT count(*) AS n FROM message_search_text').get() as { n: number }).n;
      for (const index of INDEXES) db.prepare(`INSERT INTO ${index} (${index}) VALUES ('delete-all')`).run();
      const batch = db.prepare<[number], { id: number; text: string }>('SELECT id, text FROM message_search_text WHERE id > ? ORDER BY id LIMIT 5000');
      const words = db.prepare('INSERT INTO message_words (rowid, text) VALUES (?, ?)');
      const trigrams = db.prepare('INSERT INTO message_trigrams (rowid, text) SELECT id, text FROM message_search_unspaced WHERE id = ?');
      let done = 0;
      let last = 0;
      onProgress(0, total);
      for (let rows = batch.all(last); rows.length > 0; rows = batch.all(last)) {
        for (const row of rows) {
          words.run(row.id, row.text);
          if (hasUnspaced(row.text)) trigrams.run(row.id);
        }
        done += rows.length;
        last = (rows.at(-1) as { id: number }).id;
        onProgress(done, total);
      }
      for (const index of INDEXES) db.prepare(`INSERT INTO ${index} (${index}) VALUES ('optimize')`).run();
      return { indexed: done };
    });
  }
}
