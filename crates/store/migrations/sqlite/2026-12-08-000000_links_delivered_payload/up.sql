-- What a target was last sent for a resource: the adapter's translated payload (JSON text), written
-- with the link whenever a create, update, adoption or deactivation is recorded as delivered. An
-- update is sent as a PATCH of the difference between this and what the target should now hold;
-- NULL (links made before this column, or cleared by a reconcile repair or a resync) means the
-- dispatcher reads the target's copy back once and diffs against that.
ALTER TABLE links ADD COLUMN delivered_payload TEXT;
