-- What operators did with the CLI and to the running gateway (issue 19): tenant add/remove, key
-- issue/revoke, deliveries retry, resync, reconcile --repair, target reloads. Who (`--actor`, or
-- the OS user), when, what changed — never a secret (a key's id and label, not its token). Not
-- tied to a tenant by a foreign key: the event of a tenant's removal outlives the tenant; the
-- tenant is kept by id and by name (NULL for an event about no tenant). `scimgw audit` shows
-- them beside the API's events. Keep column-for-column equal to the other engine's migration
-- and to src/schema.rs.
CREATE TABLE operator_events (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_us          BIGINT  NOT NULL,
    actor          TEXT    NOT NULL,
    operation      TEXT    NOT NULL,
    tenant_id      TEXT,
    tenant_name    TEXT,
    target         TEXT,
    detail         TEXT    NOT NULL
);
CREATE INDEX operator_events_tenant_at ON operator_events (tenant_name, at_us);
CREATE INDEX operator_events_at ON operator_events (at_us);
