-- Events: one row per committed post change, written in the change's own transaction.
-- `post` is the post as it was after the change (before it, for post.deleted), in the
-- domain's own JSON (every version renders its representation from it).
CREATE TABLE events (
    id          uuid PRIMARY KEY,
    type        text NOT NULL CHECK (type IN ('post.created', 'post.updated', 'post.deleted', 'webhook.test')),
    occurred_at timestamptz NOT NULL,
    post        jsonb
);
-- Newest first (UUIDv7 ids), optionally of one type.
CREATE INDEX events_by_type ON events (type, id DESC);
CREATE INDEX events_by_time ON events (occurred_at);

-- Jobs: the transactional outbox and work queue. A row is written in the same transaction as
-- the change that causes it; workers claim due rows with FOR UPDATE SKIP LOCKED and hold a
-- lease (`locked_until`) that they extend while they work; a job whose lease ran out (its
-- worker died) is due again.
CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    run_at       timestamptz NOT NULL,
    locked_by    text,
    locked_until timestamptz,
    last_error   text,
    -- W3C traceparent of the request that caused the job: its work continues that trace.
    traceparent  text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('succeeded', 'failed');
