-- Reconciliation (issue 9): the last run of `scimgw reconcile` (or of a target's schedule) per
-- tenant and target, with what it found. One row per target: a scheduled run claims it by moving
-- `started_us` forward only if the previous start is older than the target's interval (so of
-- several dispatchers sharing a store, one runs it); `scimgw status` and `/metrics` read the
-- counts. A failed run records its error and keeps the previous counts. Keep column-for-column
-- equal to the other engine's migration and to src/schema.rs.
CREATE TABLE reconcile_runs (
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    target         TEXT    NOT NULL,
    started_us     BIGINT  NOT NULL,
    running_owner  TEXT,
    finished_us    BIGINT,
    triggered_by   TEXT    NOT NULL,
    mode           TEXT    NOT NULL,
    checked        BIGINT  NOT NULL,
    in_sync        BIGINT  NOT NULL,
    drifted        BIGINT  NOT NULL,
    missing        BIGINT  NOT NULL,
    orphans        BIGINT  NOT NULL,
    unlinked       BIGINT  NOT NULL,
    repairs        BIGINT  NOT NULL,
    error          TEXT,
    PRIMARY KEY (tenant_id, target)
);
