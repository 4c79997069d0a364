-- Posts. Ids are UUIDv7 (time-ordered), so "newest first" is `ORDER BY id DESC` and a keyset
-- cursor is just the last id seen.
CREATE TABLE posts (
    id         uuid        PRIMARY KEY,
    author_id  uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      text        NOT NULL,
    content    text        NOT NULL,
    published  boolean     NOT NULL DEFAULT false,
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Serves the default list (published, newest first) however many drafts there are.
CREATE INDEX posts_published_id_idx ON posts (id DESC) WHERE published;
-- Serves ?authorId= lists and the cascade from users.
CREATE INDEX posts_author_id_id_idx ON posts (author_id, id DESC);
