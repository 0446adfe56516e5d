DROP INDEX links_remote_key;
ALTER TABLE links DROP COLUMN remote_key;
