-- Full-text search of plaintext messages (docs/search.md).
--
-- message_search_text is what a message is searched by: the text of a content
-- message of kind 'text' (body.text when the body is an object with a string
-- "text", or the body when it is a JSON string) and its attachments' names.
-- E2E rows, system rows, change rows (edits, deletes, reactions) and deleted
-- messages are not in it, so they are never indexed. The names are read by index, $[0] to
-- $[9] (a message carries at most 10 attachments, protocol/decode.ts MAX_ATTACHMENTS):
-- FTS5 reads its content through this view, and json_each cannot be used there.
CREATE VIEW message_search_text (id, thread_id, seq, sender_user_id, created_at, text) AS
SELECT id, thread_id, seq, sender_user_id, created_at, text FROM (
  SELECT m.id, m.thread_id, m.seq, m.sender_user_id, m.created_at,
         trim(
           coalesce(CASE WHEN json_valid(m.body) THEN
             CASE json_type(m.body)
               WHEN 'text' THEN m.body ->> '$'
               WHEN 'object' THEN CASE json_type(m.body, '$.text') WHEN 'text' THEN m.body ->> '$.text' END
             END
           END, '')
           || ' ' ||
           CASE WHEN json_valid(m.attachments) THEN concat_ws(' ',
             CASE json_type(m.attachments, '$[0].name') WHEN 'text' THEN m.attachments ->> '$[0].name' END,
             CASE json_type(m.attachments, '$[1].name') WHEN 'text' THEN m.attachments ->> '$[1].name' END,
             CASE json_type(m.attachments, '$[2].name') WHEN 'text' THEN m.attachments ->> '$[2].name' END,
             CASE json_type(m.attachments, '$[3].name') WHEN 'text' THEN m.attachments ->> '$[3].name' END,
             CASE json_type(m.attachments, '$[4].name') WHEN 'text' THEN m.attachments ->> '$[4].name' END,
             CASE json_type(m.attachments, '$[5].name') WHEN 'text' THEN m.attachments ->> '$[5].name' END,
             CASE json_type(m.attachments, '$[6].name') WHEN 'text' THEN m.attachments ->> '$[6].name' END,
             CASE json_type(m.attachments, '$[7].name') WHEN 'text' THEN m.attachments ->> '$[7].name' END,
             CASE json_type(m.attachments, '$[8].name') WHEN 'text' THEN m.attachments ->> '$[8].name' END,
             CASE json_type(m.attachments, '$[9].name') WHEN 'text' THEN m.attachments ->> '$[9].name' END
           ) ELSE '' END
         ) AS text
    FROM messages m
   WHERE m.kind = 'text' AND m.change IS NULL AND m.deleted_at IS NULL
) WHERE text <> '';

-- The messages written (in part) in a script without spaces between words: Chinese, Japanese,
-- Korean, Thai, Lao, Khmer, Myanmar. The word tokenizer takes a whole run of them as one
-- token, so they are found by substring, through trigrams. The ranges are UNSPACED_RANGES in
-- storage/search/query.ts: a query term with such a character goes to the trigrams, and the
-- message that holds it is then in this view.
CREATE VIEW message_search_unspaced (id, text) AS
SELECT id, text FROM message_search_text
 WHERE text GLOB '*[ก-໿က-႟ᄀ-ᇿក-៿々-〇ぁ-ヿㄱ-ㆎㇰ-ㇿ㐀-䶿一-鿿가-힯豈-﫿ｦ-ﾟ𠀀-𯿿]*';

-- Two indexes (external content: the text is not stored again, only the index). Words,
-- diacritics folded (cafe finds café), for words and prefixes, of every searchable message;
-- trigrams, for substrings, of the messages above only (a trigram index is about four times
-- the size of a word index, and costs as much again to keep).
CREATE VIRTUAL TABLE message_words USING fts5 (
  text, content = 'message_search_text', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE message_trigrams USING fts5 (
  text, content = 'message_search_unspaced', content_rowid = 'id', tokenize = 'trigram remove_diacritics 1'
);


-- Kept in the message's own transaction, whatever writes it. An external-content index is
-- told what it held to forget it ('delete' with the old text): BEFORE the row changes the
-- view still shows the old text; AFTER, the new one.
--
-- A deleted or edited message must leave no trace in the file. FTS5 normally records a
-- deletion as a delete marker and keeps the word in its segment until a merge; with its
-- 'secure-delete' option on, the flush removes the entries from the segment b-tree itself,
-- and PRAGMA secure_delete zeroes the freed bytes. The option makes every insert several
-- times slower, so it is on only around a deletion: on, 'delete', 'flush' (applied now,
-- while on), off. test/unit/search-erasure.test.ts scans the file for the words.
CREATE TRIGGER message_search_insert AFTER INSERT ON messages
WHEN NEW.kind = 'text' AND NEW.change IS NULL AND NEW.deleted_at IS NULL BEGIN
  INSERT INTO message_words (rowid, text) SELECT id, text FROM message_search_text WHERE id = NEW.id;
  INSERT INTO message_trigrams (rowid, text) SELECT id, text FROM message_search_unspaced WHERE id = NEW.id;
END;

CREATE TRIGGER message_search_forget BEFORE UPDATE OF body, attachments, deleted_at, kind, change ON messages BEGIN
  INSERT INTO message_words (message_words, rank) SELECT 'secure-delete', 1 FROM message_search_text WHERE id = OLD.id;
  INSERT INTO message_words (message_words, rowid, text) SELECT 'delete', id, text FROM message_search_text WHERE id = OLD.id;
  INSERT INTO message_words (message_words) SELECT 'flush' FROM message_search_text WHERE id = OLD.id;
  INSERT INTO message_words (message_words, rank) SELECT 'secure-delete', 0 FROM message_search_text WHERE id = OLD.id;
  INSERT INTO message_trigrams (message_trigrams, rank) SELECT 'secure-delete', 1 FROM message_search_unspaced WHERE id = OLD.id;
  INSERT INTO message_trigrams (message_trigrams, rowid, text) SELECT 'delete', id, text FROM message_search_unspaced WHERE id = OLD.id;
  INSERT INTO message_trigrams (message_trigrams) SELECT 'flush' FROM message_search_unspaced WHERE id = OLD.id;
  INSERT INTO message_trigrams (message_trigrams, rank) SELECT 'secure-delete', 0 FROM message_search_unspaced WHERE id = OLD.id;
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF body, attachments, deleted_at, kind, change ON messages BEGIN
  INSERT INTO message_words (rowid, text) SELECT id, text FROM message_search_text WHERE id = NEW.id;
  INSERT INTO message_trigrams (rowid, text) SELECT id, text FROM message_search_unspaced WHERE id = NEW.id;
END;

CREATE TRIGGER message_search_delete BEFORE DELETE ON messages BEGIN
  INSERT INTO message_words (message_words, rank) SELECT 'secure-delete', 1 FROM message_search_text WHERE id = OLD.id;
  INSERT INTO message_words (message_words, rowid, text) SELECT 'delete', id, text FROM message_search_text WHERE id = OLD.id;
  INSERT INTO message_words (message_words) SELECT 'flush' FROM message_search_text WHERE id = OLD.id;
  INSERT INTO message_words (message_words, rank) SELECT 'secure-delete', 0 FROM message_search_text WHERE id = OLD.id;
  INSERT INTO message_trigrams (message_trigrams, rank) SELECT 'secure-delete', 1 FROM message_search_unspaced WHERE id = OLD.id;
  INSERT INTO message_trigrams (message_trigrams, rowid, text) SELECT 'delete', id, text FROM message_search_unspaced WHERE id = OLD.id;
  INSERT INTO message_trigrams (message_trigrams) SELECT 'flush' FROM message_search_unspaced WHERE id = OLD.id;
  INSERT INTO message_trigrams (message_trigrams, rank) SELECT 'secure-delete', 0 FROM message_search_unspaced WHERE id = OLD.id;
END;

-- The messages stored before this version.
INSERT INTO message_words (message_words) VALUES ('rebuild');
INSERT INTO message_trigrams (message_trigrams) VALUES ('rebuild');
