ALTER TABLE posts DROP COLUMN author_username;
