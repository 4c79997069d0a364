DROP TABLE post_tags;
DROP INDEX posts_published_id_idx;
ALTER TABLE posts ADD COLUMN published boolean NOT NULL DEFAULT false;
UPDATE posts SET published = (status = 'published');
CREATE INDEX posts_published_id_idx ON posts (id DESC) WHERE published;
ALTER TABLE posts DROP COLUMN tags;
ALTER TABLE posts DROP COLUMN published_at;
ALTER TABLE posts DROP COLUMN status;
