-- v2 posts: a status (draft, published, archived) replaces the published flag, a publishedAt
-- that is set the first time a post is published, and tags.
ALTER TABLE posts ADD COLUMN status text NOT NULL DEFAULT 'draft'
    CHECK (status IN ('draft', 'published', 'archived'));
ALTER TABLE posts ADD COLUMN published_at timestamptz;
ALTER TABLE posts ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
UPDATE posts
SET status = CASE WHEN published THEN 'published' ELSE 'draft' END,
    published_at = CASE WHEN published THEN created_at END;

DROP INDEX posts_published_id_idx;
ALTER TABLE posts DROP COLUMN published;
-- Serves the default list (published, newest first) however many drafts there are.
CREATE INDEX posts_published_id_idx ON posts (id DESC) WHERE status = 'published';

-- One row per tag of a post, in the same transaction as the post: a tag-filtered page is an
-- index range scan on (tag, post_id) however many posts there are, newest first. The post keeps
-- its tags (in the order given) in `posts.tags`, so reading a post needs no join.
CREATE TABLE post_tags (
    tag     text NOT NULL,
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, post_id)
);
CREATE INDEX post_tags_post_id_idx ON post_tags (post_id);
