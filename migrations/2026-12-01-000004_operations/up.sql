-- Long-running operations (exports) and their files. A file is stored as ordered chunks of
-- NDJSON in the database, so any instance can serve it and a crashed export restarts cleanly.
CREATE TABLE operations (
    id               uuid PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('export')),
    owner_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The API version whose representation the file is written in (v1, v2).
    api_version      text NOT NULL,
    status           text NOT NULL CHECK (status IN ('notStarted', 'running', 'succeeded', 'failed', 'canceled')),
    percent_complete integer NOT NULL DEFAULT 0 CHECK (percent_complete BETWEEN 0 AND 100),
    -- A problem+json body when the operation failed.
    error            jsonb,
    result_count     bigint,
    -- The job run (its claim number) that owns the file: only that run may write chunks,
    -- progress and the final status, so a run that was taken over cannot touch the file.
    run              integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL
);
CREATE INDEX operations_expires_at ON operations (expires_at);

CREATE TABLE export_chunks (
    operation_id uuid NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    run          integer NOT NULL,
    seq          integer NOT NULL,
    data         bytea NOT NULL,
    PRIMARY KEY (operation_id, run, seq)
);
