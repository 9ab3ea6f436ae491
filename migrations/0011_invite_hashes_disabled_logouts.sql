-- Two secrets that outlived what they should. First, invite codes are
-- kept as SHA-256 hashes, as device tokens are: a copy of
-- the database (a backup, a stolen disk) yields no code that registers an
-- account. The code is shown once, when it is made; lists show an id and the
-- code's first four letters, enough to tell invites apart. Codes made before
-- this migration are hashed in place (sha256() is defined by migrate(), the
-- same hash as the server's; codes are compared in lower case) and keep working.
CREATE TABLE invites_new (
  id          INTEGER PRIMARY KEY,
  code_hash   BLOB NOT NULL UNIQUE,
  code_prefix TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,                    -- NULL: never
  max_uses    INTEGER NOT NULL DEFAULT 1 CHECK (max_uses >= 1),
  uses        INTEGER NOT NULL DEFAULT 0,
  revoked_at  INTEGER,
  note        TEXT NOT NULL DEFAULT ''
) STRICT;

INSERT INTO invites_new (code_hash, code_prefix, created_at, expires_at, max_uses, uses, revoked_at, note)
  SELECT sha256(lower(code)), substr(lower(code), 1, 4), created_at, expires_at, max_uses, uses, revoked_at, note
    FROM invites ORDER BY created_at, code;

DROP TABLE invites;
ALTER TABLE invites_new RENAME TO invites;

-- Disabling a user now logs out all their devices for good, so that enabling
-- them again brings back no token from before (one may have been stolen).
-- Users disabled before this version still hold such tokens: they are
-- revoked here, as `chatd user disable` now does (devices.ts, revoke).
UPDATE devices
   SET revoked_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000,
       token_hash = NULL, push_platform = NULL, push_token = NULL, push_topic = NULL
 WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM users WHERE disabled = 1);
