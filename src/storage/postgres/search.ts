import type { StoredMessage } from '../ports/messaging.js';
import { type SearchIndexCheck, type SearchInput, type SearchPage, type SearchStorage, decodeSearchCursor, nextSearchCursor } from '../ports/search.js';
import { escapeLike, planSearch } from '../search/query.js';
import { snippetOf } from '../search/snippet.js';
import { searchableText } from '../search/text.js';
import { messageColumns } from './append.js';
import type { PgDatabase } from './database.js';
import type { Row } from './sql.js';

/** The rows a searchable message should have in message_search (migrations/postgres/0007_search.sql). */
const ENTRIES = `SELECT id, thread_id, seq, sender_user_id, created_at, entry
  FROM (SELECT m.id, m.thread_id, m.seq, m.sender_user_id, m.created_at,
               chatd_search_entry(m.kind, m.change, m.deleted_at, m.body, m.attachments) AS entry FROM messages m) x
 WHERE entry IS NOT NULL`;

/** Which optional extensions the search runs with (the migration creates them when the role may). */
export interface SearchFeatures {
  /** Diacritics folded by unaccent (else a translate() of common Latin letters). */
  readonly unaccent: boolean;
  /** Substrings found through a pg_trgm index (else LIKE scans the user's searchable messages). */
  readonly trigrams: boolean;
}

export async function searchFeatures(db: PgDatabase): Promise<SearchFeatures> {
  const { rows } = await db.read.query<{ unaccent: boolean; trigrams: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent') AS unaccent,
            EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'message_search_trigrams') AS trigrams`,
  );
  return rows[0] as SearchFeatures;
}

/**
 * SearchStorage on PostgreSQL: message_search, kept by a trigger in each
 * message's own transaction, with a GIN to_tsvector('simple') index for words
 * and (with pg_trgm) a trigram index for substrings. The user's text only
 * ever reaches SQL as parameters: words through phraseto_tsquery, substrings
 * escaped for LIKE.
 */
export class PostgresSearchStorage implements SearchStorage {
  constructor(private readonly db: PgDatabase) {}

  async search(input: SearchInput): Promise<SearchPage> {
    const plan = planSearch(input.query);
    const offset = input.cursor === undefined ? 0 : decodeSearchCursor(input.cursor);
    if (offset === undefined) throw new Error('search: a cursor this server did not make (the service checks it first)');
    if (plan.kind === 'nothing') return { results: [], nextCursor: null };
    const values: unknown[] = [input.userId, input.threadId ?? null, input.senderId ?? null, input.after ?? null, input.before ?? null, input.limit + 1, offset];
    const parameter = (value: string): string => `$${values.push(value)}`;
    let match: string;
    let score: string;
    if (plan.kind === 'words') {
      // Each word a phrase of the lexemes the parser makes of it (don't: don <-> t); the last also a prefix.
      const words = plan.words.map((word, i) =>
        i === plan.words.length - 1 ? `chatd_search_prefix(${parameter(word)})` : `phraseto_tsquery('simple', chatd_search_fold(${parameter(word)}))`,
      );
      match = `to_tsvector('simple', s.text) @@ (${words.join(' && ')})`;
      score = `ts_rank(to_tsvector('simple', s.text), (${words.join(' && ')}))`;
    } else {
      match = plan.substrings.map((term) => `s.text LIKE '%' || chatd_search_fold(${parameter(escapeLike(term))}) || '%'`).join(' AND ');
      score = '0';
    }
    const { rows } = await this.db.read.query<StoredMessage & Row & { score: number }>(
      `SELECT ${messageColumns('m')}, ${score} AS score
         FROM message_search s
         JOIN thread_members tm ON tm.thread_id = s.thread_id AND tm.user_id = $1
         JOIN messages m ON m.id = s.message_id
        WHERE ${match}
          AND s.seq > tm.joined_seq AND (tm.left_seq IS NULL OR s.seq <= tm.left_seq)
          AND m.kind = 'text' AND m.change IS NULL AND m.deleted_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = $1 AND h.message_id = s.message_id)
          AND ($2::bigint IS NULL OR s.thread_id = $2)
          AND ($3::bigint IS NULL OR s.sender_user_id = $3)
          AND ($4::bigint IS NULL OR s.created_at > $4)
          AND ($5::bigint IS NULL OR s.created_at < $5)
        ORDER BY score DESC, s.message_id DESC
        LIMIT $6 OFFSET $7`,
      values,
    );
    const page = rows.slice(0, input.limit);
    return {
      results: page.map(({ score: _score, ...message }) => ({ message, ...snippetOf(searchableText(message.bodyJson, message.attachmentsJson), plan) })),
      nextCursor: nextSearchCursor(offset, input.limit, rows.length > input.limit),
    };
  }

  /** Always thorough: one read of both tables, without locks. */
  async check(): Promise<SearchIndexCheck> {
    const { rows } = await this.db.read.query<{ searchable: number; indexed: number; missing: number; extra: number; stale: number }>(
      `SELECT count(e.id)::bigint AS searchable, count(s.message_id)::bigint AS indexed,
              count(*) FILTER (WHERE s.message_id IS NULL)::bigint AS missing,
              count(*) FILTER (WHERE e.id IS NULL)::bigint AS extra,
              count(*) FILTER (WHERE e.id IS NOT NULL AND s.message_id IS NOT NULL
                               AND (s.text, s.thread_id, s.seq, s.sender_user_id, s.created_at) IS DISTINCT FROM (e.entry, e.thread_id, e.seq, e.sender_user_id, e.created_at))::bigint AS stale
         FROM (${ENTRIES}) e FULL JOIN message_search s ON s.message_id = e.id`,
    );
    const row = rows[0] as { searchable: number; indexed: number; missing: number; extra: number; stale: number };
    const problems: string[] = [];
    if (row.missing > 0) problems.push(`message_search lacks ${row.missing} searchable message(s)`);
    if (row.extra > 0) problems.push(`message_search has ${row.extra} entr(ies) for messages that are not searchable`);
    if (row.stale > 0) problems.push(`message_search has ${row.stale} entr(ies) that differ from their message`);
    return { ok: problems.length === 0, searchable: row.searchable, indexed: row.indexed, problems };
  }

  async rebuild(onProgress: (done: number, total: number) => void = () => {}): Promise<{ indexed: number }> {
    const client = await this.db.pool.connect();
    try {
      await client.query('BEGIN');
      // Writes to messages wait for the rebuild (the trigger writes message_search): no message is indexed twice or missed.
      await client.query('LOCK TABLE message_search IN EXCLUSIVE MODE');
      await client.query('DELETE FROM message_search');
      const total = Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM messages')).rows[0]?.n ?? 0);
      onProgress(0, total);
      let last = 0;
      let indexed = 0;
      let scanned = 0;
      for (;;) {
        const batch = await client.query<{ last: string | null; scanned: string; indexed: string }>(
          `WITH slice AS (SELECT id FROM messages WHERE id > $1 ORDER BY id LIMIT 5000),
                stored AS (
                  INSERT INTO message_search (message_id, thread_id, seq, sender_user_id, created_at, text)
                  SELECT id, thread_id, seq, sender_user_id, created_at, entry FROM (${ENTRIES}) e WHERE e.id IN (SELECT id FROM slice)
                  RETURNING 1)
           SELECT (SELECT max(id) FROM slice) AS last, (SELECT count(*) FROM slice) AS scanned, (SELECT count(*) FROM stored) AS indexed`,
          [last],
        );
        const row = batch.rows[0];
        if (!row || row.last === null) break;
        last = Number(row.last);
        indexed += Number(row.indexed);
        scanned += Number(row.scanned);
        onProgress(scanned, total);
      }
      await client.query('COMMIT');
      return { indexed };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
}
