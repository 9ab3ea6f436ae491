-- Account event ids in commit order (PG-B). The RevocationWatcher reads events by id ("after the last
-- one I saw"), which is only sound if no event with a smaller id commits after one with a bigger id.
-- An identity column draws its ids when the row is inserted, not when it commits: two transactions
-- revoking at once could commit ids 6 then 5, and a reader that saw 6 would skip 5 for good.
-- So every INSERT into account_events first takes a transaction-scoped advisory lock (a statement
-- trigger fires before the statement's rows draw their ids), held to COMMIT: the next writer draws
-- its ids only once the previous one has committed (and become visible). A trigger, so it holds for
-- every writer (the server, the admin CLI, db copy) whatever code it runs. Revocations are rare:
-- serialising their transactions costs nothing that shows.
CREATE FUNCTION account_events_in_commit_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Keyed by the table's oid (the two-key form: apart from the single-key locks, e.g. migrations').
  PERFORM pg_advisory_xact_lock('account_events'::regclass::oid::integer, 0);
  RETURN NULL;
END
$$;

CREATE TRIGGER account_events_in_commit_order BEFORE INSERT ON account_events
  FOR EACH STATEMENT EXECUTE FUNCTION account_events_in_commit_order();
