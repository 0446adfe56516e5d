-- An account at a target is linked to at most one resource: two users linked to one account
-- would have the second one's changes overwrite the first person's (a merged account; issue 17).
-- Links already sharing an account keep the first one made; the others lose their remote id and
-- say why, so their next delivery looks the account up again, and adoption refuses an account
-- linked to someone else (the dispatcher dead-letters it, naming the holder).
UPDATE links SET
    remote_id = NULL,
    delivered_version = NULL,
    delivered_payload = NULL,
    last_error = 'unlinked when links became unique: this account at the target was also linked to another '
        || resource_type || '; the next delivery looks it up again'
WHERE remote_id IS NOT NULL AND state <> 'deleted' AND EXISTS (
    SELECT 1 FROM links o
    WHERE o.tenant_id = links.tenant_id AND o.target = links.target AND o.resource_type = links.resource_type
      AND o.remote_id = links.remote_id AND o.state <> 'deleted'
      AND (o.updated_us < links.updated_us OR (o.updated_us = links.updated_us AND o.local_id < links.local_id))
);
-- A deleted link keeps the id the account had (for the record); it holds nothing.
CREATE UNIQUE INDEX links_remote ON links (tenant_id, target, resource_type, remote_id)
    WHERE remote_id IS NOT NULL AND state <> 'deleted';
