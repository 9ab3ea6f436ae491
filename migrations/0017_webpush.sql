-- Web Push (docs/push.md, "Web Push"): a browser's subscription is a third kind of
-- push token, devices.push_platform = 'webpush', its push_token the subscription's
-- JSON ({endpoint, keys: {p256dh, auth}}). SQLite cannot change a CHECK constraint,
-- so devices is rebuilt as SQLite's ALTER TABLE procedure does it: migrate() runs
-- migrations with foreign keys off (the tables that reference devices keep naming
-- it) and checks them before this commits. The columns keep their order, every row
-- keeps its id, and the indexes and the trigger on devices are made again as they
-- were. devices has a row per login, never per message: the copy is quick.
CREATE TABLE devices_new (
  id            INTEGER PRIMARY KEY,
  user_id       INTEGER NOT NULL REFERENCES users (id),
  name          TEXT NOT NULL,
  platform      TEXT NOT NULL,
  token_hash    BLOB UNIQUE,              -- SHA-256 of the bearer token; NULL once revoked
  created_at    INTEGER NOT NULL,
  last_seen_at  INTEGER,
  revoked_at    INTEGER,
  -- Push notifications: where to reach this device while it is offline.
  push_platform TEXT CHECK (push_platform IN ('apns', 'fcm', 'webpush')),
  push_token    TEXT,                     -- webpush: the subscription's JSON
  push_topic    TEXT,                     -- APNs bundle id
  -- Inbox overflowed: the device must sync by thread cursors on its next connection.
  inbox_overflow INTEGER NOT NULL DEFAULT 0 CHECK (inbox_overflow IN (0, 1)),
  inbox_count   INTEGER NOT NULL DEFAULT 0,
  live_after    INTEGER,
  enc_key       TEXT,
  sign_key      TEXT,
  key_signature TEXT,
  keys_at       INTEGER,
  key_counter   INTEGER,
  account_signature TEXT
) STRICT;
INSERT INTO devices_new (id, user_id, name, platform, token_hash, created_at, last_seen_at, revoked_at, push_platform, push_token, push_topic,
                         inbox_overflow, inbox_count, live_after, enc_key, sign_key, key_signature, keys_at, key_counter, account_signature)
  SELECT id, user_id, name, platform, token_hash, created_at, last_seen_at, revoked_at, push_platform, push_token, push_topic,
         inbox_overflow, inbox_count, live_after, enc_key, sign_key, key_signature, keys_at, key_counter, account_signature
    FROM devices;
DROP TABLE devices;
ALTER TABLE devices_new RENAME TO devices;
CREATE INDEX devices_by_user ON devices (user_id);
CREATE INDEX devices_by_push_token ON devices (push_token) WHERE push_token IS NOT NULL;
CREATE INDEX devices_by_sign_key ON devices (sign_key) WHERE sign_key IS NOT NULL;
-- As 0012 made it (dropped with the old table).
CREATE TRIGGER device_messages_dropped_at_revoke AFTER UPDATE OF revoked_at ON devices
  WHEN NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL
BEGIN
  DELETE FROM device_messages WHERE to_device = NEW.id;
END;
