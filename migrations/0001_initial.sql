-- chatd schema, version 1. Times are Unix milliseconds (INTEGER). Booleans are 0/1.
-- Rows of users and devices are never deleted while messages may refer to them:
-- they are disabled, revoked or marked deleted instead.

-- Facts about this database: 'epoch' is random per database, so that a client can
-- tell a restored backup (whose seqs may have gone backwards) from the database it knew.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(16))));

CREATE TABLE users (
  id             INTEGER PRIMARY KEY,
  username       TEXT NOT NULL COLLATE NOCASE UNIQUE,
  display_name   TEXT NOT NULL,
  password_hash  TEXT,                    -- argon2id PHC string; NULL once deleted
  disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at     INTEGER NOT NULL,
  deleted_at     INTEGER,                 -- the username stays reserved
  last_active_at INTEGER
) STRICT;

CREATE TABLE devices (
  id            INTEGER PRIMARY KEY,
  user_id       INTEGER NOT NULL REFERENCES users (id),
  name          TEXT NOT NULL,
  platform      TEXT NOT NULL,
  token_hash    BLOB UNIQUE,              -- SHA-256 of the bearer token; NULL once revoked
  created_at    INTEGER NOT NULL,
  last_seen_at  INTEGER,
  revoked_at    INTEGER,
  -- Push notifications: where to reach this device while it is offline.
  push_platform TEXT CHECK (push_platform IN ('apns', 'fcm')),
  push_token    TEXT,
  push_topic    TEXT,                     -- APNs bundle id
  -- Inbox overflowed: the device must sync by thread cursors on its next connection.
  inbox_overflow INTEGER NOT NULL DEFAULT 0 CHECK (inbox_overflow IN (0, 1))
) STRICT;
CREATE INDEX devices_by_user ON devices (user_id);

CREATE TABLE invites (
  code        TEXT PRIMARY KEY,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,                    -- NULL: never
  max_uses    INTEGER NOT NULL DEFAULT 1 CHECK (max_uses >= 1),
  uses        INTEGER NOT NULL DEFAULT 0,
  revoked_at  INTEGER,
  note        TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE threads (
  id              INTEGER PRIMARY KEY,
  kind            TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
  title           TEXT,                   -- groups only
  direct_key      TEXT UNIQUE,            -- direct only: '<lower user id>:<higher user id>'
  last_seq        INTEGER NOT NULL DEFAULT 0,
  last_message_at INTEGER,
  e2e_required    INTEGER NOT NULL DEFAULT 0 CHECK (e2e_required IN (0, 1)),
  created_by      INTEGER REFERENCES users (id),
  created_at      INTEGER NOT NULL,
  CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
) STRICT;

-- A user's place in a thread. left_seq is set when they leave or are removed:
-- they keep seeing history up to it and nothing after.
CREATE TABLE thread_members (
  thread_id     INTEGER NOT NULL REFERENCES threads (id),
  user_id       INTEGER NOT NULL REFERENCES users (id),
  role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  joined_seq    INTEGER NOT NULL DEFAULT 0,  -- history visible from joined_seq + 1
  left_seq      INTEGER,
  read_seq      INTEGER NOT NULL DEFAULT 0,  -- read cursor
  delivered_seq INTEGER NOT NULL DEFAULT 0,  -- highest seq any of the user's devices acknowledged
  muted         INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0, 1)),
  label         TEXT,
  joined_at     INTEGER NOT NULL,
  PRIMARY KEY (thread_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX thread_members_by_user ON thread_members (user_id, thread_id);

-- Delivery cursor per device and thread: everything up to delivered_seq was acknowledged.
CREATE TABLE device_cursors (
  device_id     INTEGER NOT NULL REFERENCES devices (id),
  thread_id     INTEGER NOT NULL REFERENCES threads (id),
  delivered_seq INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (device_id, thread_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE messages (
  id               INTEGER PRIMARY KEY,
  thread_id        INTEGER NOT NULL REFERENCES threads (id),
  seq              INTEGER NOT NULL,
  sender_user_id   INTEGER NOT NULL REFERENCES users (id),
  sender_device_id INTEGER NOT NULL REFERENCES devices (id),
  client_msg_id    TEXT NOT NULL,
  kind             TEXT NOT NULL DEFAULT 'text' CHECK (kind IN ('text', 'e2e', 'system')),
  body             TEXT NOT NULL,           -- the message content as the client sent it (JSON text; E2E envelopes included)
  created_at       INTEGER NOT NULL,
  UNIQUE (thread_id, seq),
  UNIQUE (sender_device_id, client_msg_id)  -- idempotent send
) STRICT;

-- Per-device offline inbox: messages stored while the device was away, drained
-- in message id order (which is seq order within each thread) on reconnect.
CREATE TABLE inbox (
  device_id  INTEGER NOT NULL REFERENCES devices (id),
  message_id INTEGER NOT NULL REFERENCES messages (id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (device_id, message_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE contacts (
  user_id         INTEGER NOT NULL REFERENCES users (id),
  contact_user_id INTEGER NOT NULL REFERENCES users (id),
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (user_id, contact_user_id),
  CHECK (user_id <> contact_user_id)
) STRICT, WITHOUT ROWID;
