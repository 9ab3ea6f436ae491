-- Web Push (docs/push.md, "Web Push"): a browser's subscription is a third kind of
-- push token, devices.push_platform = 'webpush', its push_token the subscription's JSON.
-- Widening the CHECK keeps every row; the new constraint is checked against them (all pass).
ALTER TABLE devices DROP CONSTRAINT devices_push_platform_check;
ALTER TABLE devices ADD CONSTRAINT devices_push_platform_check CHECK (push_platform IN ('apns', 'fcm', 'webpush'));
