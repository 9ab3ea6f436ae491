-- End-to-end encryption, protocol 2 (docs/e2e.md). Three things.
--
-- Account keys: one Ed25519 key per user, the account's identity, signed by
-- itself (signature: over ["chatd-account-v2", user_id, account_key]). It is
-- replaced only by an explicit reset (the user lost every device holding it).
CREATE TABLE account_keys (
  user_id     INTEGER PRIMARY KEY REFERENCES users (id),
  account_key TEXT NOT NULL,
  signature   TEXT NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;

-- Devices: key_counter grows at every rotation of enc_key (a lower one is a
-- rollback, refused); account_signature is the account key's signature of the
-- device's certificate: NULL while the device is pending (not approved by one
-- of the user's devices). Keys published under protocol 1 keep their sign_key
-- (a device's identity never changes, so a v2 publication must bring the same
-- one) but have no counter: they count as unpublished until the device
-- publishes v2 keys, and are never sealed to.
ALTER TABLE devices ADD COLUMN key_counter INTEGER;
ALTER TABLE devices ADD COLUMN account_signature TEXT;
-- No two devices share an identity key (the service refuses it; not UNIQUE,
-- since protocol 1 did not refuse it and old rows may repeat one).
CREATE INDEX devices_by_sign_key ON devices (sign_key) WHERE sign_key IS NOT NULL;

-- Device messages: opaque payloads (sealed by the sending device) from one
-- device of a user to another of the same user, held until the receiver
-- acknowledges them or they expire. AUTOINCREMENT: an id is never used twice,
-- so "acknowledge up to id N" never covers a message that came later.
CREATE TABLE device_messages (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  to_device   INTEGER NOT NULL REFERENCES devices (id),
  from_device INTEGER NOT NULL REFERENCES devices (id),
  payload     BLOB NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX device_messages_by_target ON device_messages (to_device, id);
CREATE INDEX device_messages_by_sender ON device_messages (from_device);
CREATE INDEX device_messages_by_time ON device_messages (created_at);

-- Revoking a device drops what waits for it, whichever code path or process
-- revokes (logout, DELETE /v1/devices/ID, a password change, the admin CLI).
-- What it sent stays: an approving device is often revoked (a phone sold)
-- before the new one has fetched its grant; receivers see the sender revoked
-- in keys_get and decide.
CREATE TRIGGER device_messages_dropped_at_revoke AFTER UPDATE OF revoked_at ON devices
  WHEN NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL
BEGIN
  DELETE FROM device_messages WHERE to_device = NEW.id;
END;
