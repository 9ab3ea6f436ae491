-- Unread counts are now cursor arithmetic: a sender's read cursor moves to each
-- message they send, so the messages after a member's read cursor are all from
-- others. The index that counted them by sender is one B-tree write per
-- message that no query needs any more.
DROP INDEX messages_by_thread_sender;
