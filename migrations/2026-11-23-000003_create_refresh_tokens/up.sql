-- Opaque refresh tokens, stored only as SHA-256 hashes. One family per login; each refresh
-- rotates the token (replaced_by points at its successor). Presenting a rotated-away token
-- again is reuse and revokes every token of the user.
CREATE TABLE refresh_tokens (
    id          uuid        PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid        NOT NULL,
    token_hash  bytea       NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    replaced_by uuid
);

CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
-- The housekeeping purge scans by expiry.
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
