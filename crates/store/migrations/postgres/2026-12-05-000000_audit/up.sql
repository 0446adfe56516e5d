-- The audit trail (issue 8): who (the API key) changed what (the resource, the operation, the
-- version it made) and when, written in the change's own transaction, so that no acknowledged
-- change lacks its event and no event describes a change that was rolled back. `scimgw audit`
-- reads it. The key is the engine's own row number (on SQLite the rowid): one B-tree less to
-- write per change than a UUID key. Removing a tenant removes its events with its data. Keep
-- column-for-column equal to the other engine's migration and to src/schema.rs.
CREATE TABLE audit_events (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at_us          BIGINT  NOT NULL,
    key_id         TEXT    NOT NULL,
    request_id     TEXT,
    operation      TEXT    NOT NULL,
    resource_type  TEXT    NOT NULL,
    resource_id    TEXT    NOT NULL,
    version        BIGINT  NOT NULL
);
CREATE INDEX audit_events_tenant_at ON audit_events (tenant_id, at_us);
