-- Messaging, version 2.
-- Inbox rows carry their thread and seq, so that a device's cumulative delivery
-- ack ("everything up to seq N of thread T") deletes them by range. No release
-- wrote inbox rows before this version, so the table is recreated empty.
DROP TABLE inbox;
CREATE TABLE inbox (
  device_id  INTEGER NOT NULL REFERENCES devices (id),
  message_id INTEGER NOT NULL REFERENCES messages (id),
  thread_id  INTEGER NOT NULL REFERENCES threads (id),
  seq        INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (device_id, message_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX inbox_by_thread ON inbox (device_id, thread_id, seq);
CREATE INDEX inbox_by_age ON inbox (created_at);
-- The devices a new message was just put in for (their inbox counts go up).
CREATE INDEX inbox_by_message ON inbox (message_id);

-- Rows in the device's inbox, kept with them so that the bound is checked without counting.
ALTER TABLE devices ADD COLUMN inbox_count INTEGER NOT NULL DEFAULT 0;

-- Unread counts: messages from others after a cursor, read from the index alone.
CREATE INDEX messages_by_thread_sender ON messages (thread_id, seq, sender_user_id);
