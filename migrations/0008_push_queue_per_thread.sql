-- The push queue in two steps, so that a message costs one row whatever the
-- size of its thread. push_threads: the threads with news to notify of (the
-- newest message), written in the message's transaction. The push worker
-- expands each into push_queue: one row per (device, thread), the newest
-- message wins, with that device's attempts and backoff. Both are bounded:
-- by threads, and by devices × threads. (Replaces 0006's queue, which had a
-- row per message and device.)
DROP TABLE push_queue;
CREATE TABLE push_queue (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id   INTEGER NOT NULL REFERENCES devices (id),
  thread_id   INTEGER NOT NULL REFERENCES threads (id),
  message_id  INTEGER NOT NULL REFERENCES messages (id),
  created_at  INTEGER NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  not_before  INTEGER NOT NULL,           -- the next attempt is due then (Unix ms)
  last_error  TEXT,
  UNIQUE (device_id, thread_id)
) STRICT;
CREATE INDEX push_queue_due ON push_queue (not_before);

CREATE TABLE push_threads (
  thread_id       INTEGER PRIMARY KEY REFERENCES threads (id),
  message_id      INTEGER NOT NULL REFERENCES messages (id),
  sender_user_id  INTEGER NOT NULL,
  created_at      INTEGER NOT NULL
) STRICT;
