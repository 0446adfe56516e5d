-- Targets the gateway could not load (issue 23): a tenant file it could not read, a target whose
-- token is missing or whose options are wrong. `serve` starts with every target that loads and
-- writes what it could not here at each start and reload (all rows replaced), so that
-- `scimgw status` run from an admin's shell, which reads no vendor secret, shows the gateway's
-- own view. `target` is '' for a tenant file that could not be read at all. `running_previous`
-- is 1 when a reload broke a target that keeps running its previous configuration. Keep
-- column-for-column equal to the other engine's migration and to src/schema.rs.
CREATE TABLE target_problems (
    tenant_id         TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    target            TEXT    NOT NULL,
    problems          TEXT    NOT NULL,
    running_previous  BIGINT  NOT NULL,
    since_us          BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, target)
);
