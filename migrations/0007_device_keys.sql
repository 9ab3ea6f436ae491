-- End-to-end encryption: each device's public keys (base64). enc_key: X25519,
-- what message keys are sealed to; sign_key: Ed25519, what the device signs
-- its messages with; key_signature: enc_key signed by sign_key. NULL until the
-- device publishes them; a device without keys gets no sealed keys.
ALTER TABLE devices ADD COLUMN enc_key TEXT;
ALTER TABLE devices ADD COLUMN sign_key TEXT;
ALTER TABLE devices ADD COLUMN key_signature TEXT;
ALTER TABLE devices ADD COLUMN keys_at INTEGER;
