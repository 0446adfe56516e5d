-- Targets paused because they stopped serving us (issue 19): a 401/403, or several deliveries in
-- a row without an answer (refused, timed out) or with a 5xx. A row here means paused: the
-- target's waiting deliveries are held (not attempted, not dead-lettered) and the dispatcher
-- probes the target at `next_probe_us` (one dispatcher takes each probe: it moves
-- `next_probe_us` first); the probe that succeeds deletes the row and wakes the held deliveries.
-- `detail` is the last error (the vendor's words, scrubbed of the token). Keep column-for-column
-- equal to the other engine's migration and to src/schema.rs.
CREATE TABLE target_health (
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    target         TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    detail         TEXT    NOT NULL,
    since_us       BIGINT  NOT NULL,
    probes         BIGINT  NOT NULL,
    next_probe_us  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, target)
);
