-- Claims on the push queue: a dispatcher claims the rows it sends (claimed_by,
-- claimed_until in Unix ms) so that no other claimant sends them meanwhile,
-- and a claim whose lease ran out (its process died) is taken over. SQLite has
-- one server process; the columns are here so that the queue behaves the same
-- on every engine (PostgreSQL, with several nodes, has them too).
ALTER TABLE push_queue ADD COLUMN claimed_by TEXT;
ALTER TABLE push_queue ADD COLUMN claimed_until INTEGER;
-- When the next claim runs out (nextDueAfter): claimed rows are few.
CREATE INDEX push_queue_claims ON push_queue (claimed_until) WHERE claimed_until IS NOT NULL;
