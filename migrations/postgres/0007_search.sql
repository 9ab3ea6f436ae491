-- Full-text search of plaintext messages (docs/search.md): the same port as SQLite's FTS5.
--
-- message_search holds one row per searchable message: a content message of kind 'text'
-- that is not deleted, with its text (body.text when the body is an object with a string
-- "text", or the body when it is a JSON string, plus the attachments' names) folded:
-- lower case, diacritics removed. A trigger keeps it in the message's own transaction.

-- Optional extensions: a role that may not create them still gets search, with a plainer
-- fold (translate() of common Latin letters) and LIKE scans for substrings. chatd logs
-- which it runs with once at start-up (storage/postgres/search.ts).
DO $$
BEGIN
  BEGIN
    CREATE EXTENSION IF NOT EXISTS unaccent;
  EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'chatd search: extension unaccent not available (%): diacritics folded by translate()', SQLERRM;
  END;
  BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
  EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'chatd search: extension pg_trgm not available (%): substring searches scan', SQLERRM;
  END;
END $$;

-- The fold: unaccent when the extension is there; lower() with ICU's root locale when the
-- server has ICU (lower() in the C locale leaves Ä and Д as they are).
DO $$
DECLARE
  unaccent_schema text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'unaccent');
  collate_clause text := CASE WHEN EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN ' COLLATE "und-x-icu"' ELSE '' END;
  unaccented text := CASE WHEN unaccent_schema IS NULL
    THEN $t$translate(t, 'ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿŁłŃńŚśŹźŻżČčĎďĚěŇňŘřŠšŤťŮůŽž', 'AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyyLlNnSsZzZzCcDdEeNnRrSsTtUuZz')$t$
    ELSE format('%I.unaccent(%L::regdictionary, t)', unaccent_schema, unaccent_schema || '.unaccent') END;
BEGIN
  EXECUTE format('CREATE FUNCTION chatd_search_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT lower(%s%s) $f$', unaccented, collate_clause);
END $$;

-- A query word as a tsquery prefix phrase: its lexemes in order, the last one a prefix
-- (meet → 'meet':*, don't → 'don' <-> 't':*). The word is a parameter, never query syntax.
CREATE FUNCTION chatd_search_prefix(word text) RETURNS tsquery LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN numnode(q) = 0 THEN q ELSE (q::text || ':*')::tsquery END FROM phraseto_tsquery('simple', chatd_search_fold(word)) AS q
$$;

-- The searchable text of a body (JSON text) and an attachments list (JSON text or NULL), unfolded:
-- the rule of SQLite's message_search_text view and of storage/search/text.ts. A body that
-- jsonb cannot hold (a \u0000 escape) has no text rather than failing the send.
CREATE FUNCTION chatd_search_text(body text, attachments text) RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  b jsonb;
  a jsonb;
  content text;
  names text;
BEGIN
  BEGIN
    b := body::jsonb;
    a := attachments::jsonb;
  EXCEPTION WHEN OTHERS THEN
    RETURN '';
  END;
  content := CASE jsonb_typeof(b)
    WHEN 'string' THEN b #>> '{}'
    WHEN 'object' THEN CASE WHEN jsonb_typeof(b -> 'text') = 'string' THEN b ->> 'text' END
  END;
  IF jsonb_typeof(a) = 'array' THEN
    SELECT string_agg(e ->> 'name', ' ' ORDER BY i) INTO names
      FROM jsonb_array_elements(a) WITH ORDINALITY AS x (e, i)
     WHERE i <= 10 AND jsonb_typeof(e -> 'name') = 'string';
  END IF;
  RETURN btrim(coalesce(content, '') || ' ' || coalesce(names, ''), ' ');
END $$;

CREATE TABLE message_search (
  message_id     bigint PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  thread_id      bigint NOT NULL,
  seq            bigint NOT NULL,
  sender_user_id bigint NOT NULL,
  created_at     bigint NOT NULL,
  text           text NOT NULL  -- folded (chatd_search_fold)
);
CREATE INDEX message_search_words ON message_search USING gin (to_tsvector('simple', text));
CREATE INDEX message_search_by_thread ON message_search (thread_id, seq);

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    EXECUTE 'CREATE INDEX message_search_trigrams ON message_search USING gin (text gin_trgm_ops)';
  END IF;
END $$;

-- What the trigger and `chatd db reindex` index: the folded text of a searchable message, or NULL.
CREATE FUNCTION chatd_search_entry(kind text, change text, deleted_at bigint, body text, attachments text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN kind = 'text' AND change IS NULL AND deleted_at IS NULL
              THEN nullif(chatd_search_fold(chatd_search_text(body, attachments)), '') END
$$;

CREATE FUNCTION chatd_message_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  entry text := chatd_search_entry(NEW.kind, NEW.change, NEW.deleted_at, NEW.body, NEW.attachments);
BEGIN
  IF entry IS NULL THEN
    IF TG_OP = 'UPDATE' THEN
      DELETE FROM message_search WHERE message_id = NEW.id;
    END IF;
  ELSE
    INSERT INTO message_search (message_id, thread_id, seq, sender_user_id, created_at, text)
    VALUES (NEW.id, NEW.thread_id, NEW.seq, NEW.sender_user_id, NEW.created_at, entry)
    ON CONFLICT (message_id) DO UPDATE SET text = EXCLUDED.text;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER message_search_insert AFTER INSERT ON messages
  FOR EACH ROW EXECUTE FUNCTION chatd_message_search_sync();
-- A change unit rewrites its target's row whole (a reaction sets the same body again): re-index only when what
-- the index holds can differ.
CREATE TRIGGER message_search_update AFTER UPDATE OF body, attachments, deleted_at, kind, change ON messages
  FOR EACH ROW
  WHEN (OLD.body IS DISTINCT FROM NEW.body OR OLD.attachments IS DISTINCT FROM NEW.attachments OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
        OR OLD.kind IS DISTINCT FROM NEW.kind OR OLD.change IS DISTINCT FROM NEW.change)
  EXECUTE FUNCTION chatd_message_search_sync();

-- The messages stored before this version.
INSERT INTO message_search (message_id, thread_id, seq, sender_user_id, created_at, text)
SELECT id, thread_id, seq, sender_user_id, created_at, entry
  FROM (SELECT m.*, chatd_search_entry(m.kind, m.change, m.deleted_at, m.body, m.attachments) AS entry FROM messages m) x
 WHERE entry IS NOT NULL;
