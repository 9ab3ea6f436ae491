-- Inbox counts go up for the same devices the new rows went to, found by the
-- same membership join; looking the rows up again by message id is no longer
-- needed, and one index less is written for every inbox row.
DROP INDEX inbox_by_message;
