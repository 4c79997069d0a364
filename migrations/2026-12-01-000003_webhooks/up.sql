-- Webhook endpoints: where events are delivered, signed with `secret` (and, for 24 hours after
-- a rotation, with `previous_secret` too).
CREATE TABLE webhook_endpoints (
    id                         uuid PRIMARY KEY,
    url                        text NOT NULL,
    description                text,
    event_types                text[] NOT NULL,
    enabled                    boolean NOT NULL DEFAULT true,
    api_version                text NOT NULL CHECK (api_version IN ('v1', 'v2')),
    secret                     text NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    version                    bigint NOT NULL DEFAULT 1,
    created_at                 timestamptz NOT NULL,
    updated_at                 timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_enabled ON webhook_endpoints (id) WHERE enabled;

-- The delivery log: one row per attempt of delivering one event to one endpoint. Fan-out
-- writes attempt 1 as `pending` (unique per event, endpoint and attempt, so a fan-out that
-- runs twice adds nothing); each attempt records its result on its row and, when it will be
-- retried, writes the next attempt as `pending` with `next_attempt_at`.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    response_status integer,
    error           text,
    duration_ms     bigint,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz,
    UNIQUE (event_id, endpoint_id, attempt)
);
-- The log of an endpoint, newest first (UUIDv7 ids).
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id DESC);
