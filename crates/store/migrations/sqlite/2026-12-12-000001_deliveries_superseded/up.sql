-- A dead letter whose resource a later delivery to the same target brought up to date is
-- `superseded` (issue 23): `status` and `/metrics` no longer count it as dead, `deliveries list
-- --state superseded` still shows it, with why. The finish of a done delivery finds its dead rows
-- through `deliveries_resource` (tenant, target, type, resource, state). Rows dead before a later
-- success already recorded are superseded here. Keep equal to the other engine's migration.
UPDATE deliveries SET
    state = 'superseded',
    last_error = 'superseded: a later delivery of the same resource succeeded; ' || COALESCE(last_error, '')
WHERE state = 'dead' AND EXISTS (
    SELECT 1 FROM deliveries d
    WHERE d.tenant_id = deliveries.tenant_id AND d.target = deliveries.target
      AND d.resource_type = deliveries.resource_type AND d.resource_id = deliveries.resource_id
      AND d.state = 'done' AND d.updated_us > deliveries.updated_us
);
