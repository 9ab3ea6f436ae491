-- Claims on the push queue (as SQLite's 0013): several nodes work one queue.
-- A node claims the rows it sends (FOR UPDATE SKIP LOCKED, so nodes claiming
-- at once take different rows) until claimed_until (Unix ms): no other node
-- sends them meanwhile, and a node that dies holding claims is taken over
-- once they run out.
ALTER TABLE push_queue ADD COLUMN claimed_by text;
ALTER TABLE push_queue ADD COLUMN claimed_until bigint;
-- When the next claim runs out (nextDueAfter): claimed rows are few.
CREATE INDEX push_queue_claims ON push_queue (claimed_until) WHERE claimed_until IS NOT NULL;
