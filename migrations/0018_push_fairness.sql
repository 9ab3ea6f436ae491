-- Small threads first (docs/push.md, "Fairness"): a row of a large thread
-- (more than 100 current members when it was queued) is in lane 1, every other
-- in lane 0, and a claim takes due rows of lane 0 before those of lane 1, so
-- one large group's thousands of notifications do not hold up a direct
-- message queued after them. Each lane is claimed oldest due first, from this
-- index (one range per lane, as push_queue_due was one range).
ALTER TABLE push_queue ADD COLUMN lane INTEGER NOT NULL DEFAULT 0 CHECK (lane IN (0, 1));
DROP INDEX push_queue_due;
CREATE INDEX push_queue_due ON push_queue (lane, not_before);
