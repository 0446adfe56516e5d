-- A user's account name at a target (its userName there, folded to lower case), from the payload
-- the target was last sent. A target that derives the name (JumpCloud's username from the mail
-- nickname or the local part) can give two people one name; a change that would is refused at
-- the edge with 409, naming who holds it (issue 17). Not unique: the remote id is (links_remote).
-- The payloads are the gateway's own JSON text.
ALTER TABLE links ADD COLUMN remote_key TEXT;
UPDATE links SET remote_key = lower(delivered_payload::jsonb ->> 'userName')
WHERE resource_type = 'User' AND delivered_payload IS NOT NULL;
CREATE INDEX links_remote_key ON links (tenant_id, target, resource_type, remote_key) WHERE remote_key IS NOT NULL;
