-- The outbox, the attempt history and the links, PostgreSQL dialect. Keep column-for-column equal
-- to ../../sqlite/*_outbox and to src/schema.rs.

-- One row means "target T must converge on resource R". The dispatcher delivers R's *current*
-- state, so rows coalesce: a change while an unleased row for the same (tenant, target, resource)
-- is waiting updates that row instead of adding one.
-- state: pending (waiting for its first attempt) | failed (an attempt failed; retried at due_us)
--      | dead (gave up; `scimgw deliveries retry` re-queues) | done | skipped (a vendor rule said
--      no and the target's policy is on_invalid = "skip"; last_error says why).
CREATE TABLE deliveries (
    id              TEXT     NOT NULL PRIMARY KEY,
    tenant_id       TEXT     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    target          TEXT     NOT NULL,
    resource_type   TEXT     NOT NULL,
    resource_id     TEXT     NOT NULL,
    state           TEXT     NOT NULL,
    version         BIGINT   NOT NULL,
    attempts        INTEGER  NOT NULL,
    due_us          BIGINT   NOT NULL,
    lease_owner     TEXT,
    lease_until_us  BIGINT,
    last_error      TEXT,
    created_us      BIGINT   NOT NULL,
    updated_us      BIGINT   NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (state, due_us);
CREATE INDEX deliveries_resource ON deliveries (tenant_id, target, resource_type, resource_id, state);
CREATE INDEX deliveries_target_state ON deliveries (target, state);

-- What each attempt did, for `scimgw deliveries show`.
CREATE TABLE delivery_attempts (
    delivery_id  TEXT     NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt      INTEGER  NOT NULL,
    at_us        BIGINT   NOT NULL,
    outcome      TEXT     NOT NULL,
    detail       TEXT,
    duration_ms  BIGINT   NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- Local resource ↔ the target's copy: its remote id, the last version delivered, and whether it
-- is active, deactivated or deleted there.
CREATE TABLE links (
    tenant_id          TEXT     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    target             TEXT     NOT NULL,
    resource_type      TEXT     NOT NULL,
    local_id           TEXT     NOT NULL,
    remote_id          TEXT,
    delivered_version  BIGINT,
    state              TEXT     NOT NULL,
    last_error         TEXT,
    updated_us         BIGINT   NOT NULL,
    PRIMARY KEY (tenant_id, target, resource_type, local_id)
);
