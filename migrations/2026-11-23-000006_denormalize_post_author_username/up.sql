-- Usernames never change, so each post can carry its author's: reading a post (or a page of
-- them) is then one single-table index lookup, without a join to users.
ALTER TABLE posts ADD COLUMN author_username text;
UPDATE posts SET author_username = users.username FROM users WHERE users.id = posts.author_id;
ALTER TABLE posts ALTER COLUMN author_username SET NOT NULL;
