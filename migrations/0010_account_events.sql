-- Account events: what ends a device's live connections (a device logged out
-- or revoked, devices signed out by a password change, a user disabled or
-- deleted). Whichever process makes the change (the server over HTTP, the
-- admin CLI) writes the event in the same transaction, so a running server,
-- which cannot hear of the CLI's changes otherwise, reads the new events by id
-- and closes the connections they concern. One row per revoked device, or one
-- with device_id NULL for every device of the user.
-- AUTOINCREMENT: an id is never used twice, even after old rows are pruned, so
-- "the events after id N" stays exact. Writers prune rows older than a day
-- (a server reads new events within a second; one that was asleep longer than
-- its heartbeat timeout has no live connections left to close).
CREATE TABLE account_events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id    INTEGER NOT NULL REFERENCES users (id),
  device_id  INTEGER REFERENCES devices (id),
  reason     TEXT NOT NULL CHECK (reason IN ('device_revoked', 'password_changed', 'user_disabled', 'user_deleted')),
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX account_events_by_time ON account_events (created_at);
