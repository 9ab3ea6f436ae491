-- Message changes (issue 21, MSG-SPEC §1): an edit, a delete for everyone and
-- a reaction toggle are each appended to the thread like a message (a change
-- row: target_id and change set), and the target row is updated to its latest
-- state in the same transaction. Unread never counts change rows: `uncounted`
-- counts them up to each seq, so unread in (a, b] is
-- (b - a) - (uncounted_at(b) - uncounted_at(a)).
ALTER TABLE messages ADD COLUMN reply_to   INTEGER;  -- a message id in the same thread (content messages only)
ALTER TABLE messages ADD COLUMN mentions   TEXT;     -- JSON array of user ids, or NULL
ALTER TABLE messages ADD COLUMN edited_at  INTEGER;  -- latest edit (ms), on the target row
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;  -- deleted for everyone (ms): tombstone, body 'null', attachments NULL, reactions NULL
ALTER TABLE messages ADD COLUMN reactions  TEXT;     -- JSON [{"emoji":"👍","user_ids":[3,7]}...] in first-reacted order; NULL: none
ALTER TABLE messages ADD COLUMN target_id  INTEGER;  -- change rows only: the message changed
ALTER TABLE messages ADD COLUMN change     TEXT;     -- change rows only: {"type":"edit"} | {"type":"delete"} | {"type":"reaction","emoji":"👍","on":true}
ALTER TABLE messages ADD COLUMN uncounted  INTEGER NOT NULL DEFAULT 0; -- change rows in this thread up to and including this seq
ALTER TABLE threads  ADD COLUMN uncounted  INTEGER NOT NULL DEFAULT 0; -- change rows in the thread (= uncounted of its last row)
CREATE INDEX messages_by_target ON messages (target_id) WHERE target_id IS NOT NULL;
CREATE TABLE hidden_messages (            -- "delete for me"
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id),
  message_id INTEGER NOT NULL REFERENCES messages (id), thread_id INTEGER NOT NULL, hidden_at INTEGER NOT NULL,
  UNIQUE (user_id, message_id)) STRICT;
