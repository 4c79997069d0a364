-- Events are purged by id (UUIDv7: time-ordered) instead of by occurred_at, so this index no
-- longer pays for itself: it was a fifth of the cost of recording an event with each post
-- change (measured with pgbench against the event insert alone).
DROP INDEX events_by_time;
