-- A device with a live connection following its threads gets new messages
-- live and needs no inbox row for them. live_after is NULL while the device
-- has no such connection; otherwise the highest message id when it went live.
-- When its last connection ends, the messages after live_after it has not
-- acknowledged are written to its inbox then (and at start-up for devices that
-- were live when the process stopped), so the inbox still holds every message
-- the device has not acknowledged.
ALTER TABLE devices ADD COLUMN live_after INTEGER;
