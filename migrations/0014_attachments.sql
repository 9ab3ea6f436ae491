-- Attachments (docs/attachments.md). An upload is one file a device sends
-- over tus (its id, random and unguessable, is the attachment id messages
-- carry); once complete it names a blob, its content stored once by SHA-256
-- in the blob store (under the data directory). attachment_refs records which
-- message references which upload, written in the message's own transaction:
-- who may read an attachment is decided from it, and an upload nobody
-- references is collected after a grace period.
CREATE TABLE uploads (
  id            TEXT PRIMARY KEY,            -- random, 128 bits, base64url
  user_id       INTEGER NOT NULL REFERENCES users (id),
  device_id     INTEGER NOT NULL REFERENCES devices (id),
  length        INTEGER NOT NULL,            -- Upload-Length: counted against the user's quota from creation
  name          TEXT NOT NULL,               -- file name from Upload-Metadata (never a path)
  declared_type TEXT NOT NULL,               -- what the client said; the mime below is what the server found
  encrypted     INTEGER NOT NULL DEFAULT 0 CHECK (encrypted IN (0, 1)),
  keep_metadata INTEGER NOT NULL DEFAULT 0 CHECK (keep_metadata IN (0, 1)),
  duration_ms   INTEGER,                     -- audio/video length as the client measured it
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,            -- an incomplete upload is collected after this
  completed_at  INTEGER,                     -- set when the last byte arrived and the blob was stored
  sha256        TEXT,                        -- the blob (hex), once complete
  size          INTEGER,                     -- bytes of the blob (may differ from length once location data is stripped)
  mime          TEXT,                        -- sniffed from the content
  width         INTEGER,
  height        INTEGER,
  thumb_sha256  TEXT,                        -- a WebP thumbnail's blob, for images the server could read
  thumb_width   INTEGER,
  thumb_height  INTEGER
) STRICT;
CREATE INDEX uploads_by_user ON uploads (user_id);
CREATE INDEX uploads_by_sha256 ON uploads (sha256) WHERE sha256 IS NOT NULL;
CREATE INDEX uploads_by_thumb ON uploads (thumb_sha256) WHERE thumb_sha256 IS NOT NULL;
CREATE INDEX uploads_incomplete ON uploads (expires_at) WHERE completed_at IS NULL;

CREATE TABLE attachment_refs (
  upload_id TEXT NOT NULL REFERENCES uploads (id),
  thread_id INTEGER NOT NULL REFERENCES threads (id),
  seq       INTEGER NOT NULL,
  PRIMARY KEY (upload_id, thread_id, seq)
) STRICT, WITHOUT ROWID;

-- Blobs whose last upload went (collected): deleted from the blob store after
-- the grace period unless an upload names them again meanwhile.
CREATE TABLE blob_orphans (
  sha256     TEXT PRIMARY KEY,
  since      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The attachments a message carries, as the server validated them (JSON array), or NULL.
ALTER TABLE messages ADD COLUMN attachments TEXT;

-- Secrets every node must share (the key that signs attachment links).
CREATE TABLE server_secrets (
  name  TEXT PRIMARY KEY,
  value BLOB NOT NULL
) STRICT, WITHOUT ROWID;
