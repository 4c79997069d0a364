-- Idempotency-Key records (Stripe semantics), per user. The primary key is the lock: the first
-- request inserts the row and owns it until it stores the response; a concurrent duplicate
-- finds the row without a response (409) and a later retry replays the stored bytes.
CREATE TABLE idempotency_keys (
    user_id          uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key              text        NOT NULL,
    request_hash     bytea       NOT NULL,
    response_status  smallint,
    response_headers text,
    response_body    bytea,
    -- An owner that died mid-request (crash, restart) loses the key after this instant.
    locked_until     timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
