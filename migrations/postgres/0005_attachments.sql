-- Attachments (as SQLite's 0014; docs/attachments.md): uploads over tus, each
-- complete one naming a blob stored once by SHA-256; attachment_refs written
-- in the message's own transaction decides who may read an attachment.
CREATE TABLE uploads (
  id            text PRIMARY KEY,
  user_id       bigint NOT NULL REFERENCES users (id),
  device_id     bigint NOT NULL REFERENCES devices (id),
  length        bigint NOT NULL,
  name          text NOT NULL,
  declared_type text NOT NULL,
  encrypted     boolean NOT NULL DEFAULT false,
  keep_metadata boolean NOT NULL DEFAULT false,
  duration_ms   bigint,
  created_at    bigint NOT NULL,
  expires_at    bigint NOT NULL,
  completed_at  bigint,
  sha256        text,
  size          bigint,
  mime          text,
  width         integer,
  height        integer,
  thumb_sha256  text,
  thumb_width   integer,
  thumb_height  integer
);
CREATE INDEX uploads_by_user ON uploads (user_id);
CREATE INDEX uploads_by_sha256 ON uploads (sha256) WHERE sha256 IS NOT NULL;
CREATE INDEX uploads_by_thumb ON uploads (thumb_sha256) WHERE thumb_sha256 IS NOT NULL;
CREATE INDEX uploads_incomplete ON uploads (expires_at) WHERE completed_at IS NULL;

CREATE TABLE attachment_refs (
  upload_id text NOT NULL REFERENCES uploads (id),
  thread_id bigint NOT NULL REFERENCES threads (id),
  seq       bigint NOT NULL,
  PRIMARY KEY (upload_id, thread_id, seq)
);

CREATE TABLE blob_orphans (
  sha256 text PRIMARY KEY,
  since  bigint NOT NULL
);

ALTER TABLE messages ADD COLUMN attachments text;

CREATE TABLE server_secrets (
  name  text PRIMARY KEY,
  value bytea NOT NULL
);
