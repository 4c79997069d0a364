-- Accounts. Email and username are unique case-insensitively (the unique indexes are on lower()).
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    username      text        NOT NULL,
    password_hash text        NOT NULL,
    first_name    text,
    last_name     text,
    role          text        NOT NULL DEFAULT 'USER' CHECK (role IN ('ADMIN', 'MODERATOR', 'USER')),
    is_active     boolean     NOT NULL DEFAULT true,
    version       bigint      NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
