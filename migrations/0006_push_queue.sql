-- Push notifications for devices that are offline when a message arrives,
-- worked off the message path. One row per (message, device); the worker sends
-- only the newest row of each (device, thread) and deletes the older ones with
-- it (a notification per thread collapses anyway). Rows go once the provider
-- answered, so a restart resumes what was pending.
CREATE TABLE push_queue (
  id          INTEGER PRIMARY KEY,
  device_id   INTEGER NOT NULL REFERENCES devices (id),
  thread_id   INTEGER NOT NULL REFERENCES threads (id),
  message_id  INTEGER NOT NULL REFERENCES messages (id),
  created_at  INTEGER NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  not_before  INTEGER NOT NULL,           -- the next attempt is due then (Unix ms)
  last_error  TEXT
) STRICT;
CREATE INDEX push_queue_by_key ON push_queue (device_id, thread_id, id);
CREATE INDEX push_queue_due ON push_queue (not_before);

-- Since the database was created: sent, failed, dropped_tokens, skipped.
CREATE TABLE push_counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT;

-- A push token belongs to one app install: registering it on one device takes it off any other.
CREATE INDEX devices_by_push_token ON devices (push_token) WHERE push_token IS NOT NULL;
