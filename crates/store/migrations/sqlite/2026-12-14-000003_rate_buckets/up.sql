-- A token bucket per target shared by every dispatcher on the store (issue 19): a target's
-- `rate_per_sec` holds across replicas. `tokens_milli` is what the bucket held at `updated_us`,
-- in thousandths of a request; a dispatcher takes a share (a tenth of a second's worth, at
-- least one) with a compare-and-set on both columns, and refills by the time passed. Keep
-- column-for-column equal to the other engine's migration and to src/schema.rs.
CREATE TABLE rate_buckets (
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    target        TEXT    NOT NULL,
    tokens_milli  BIGINT  NOT NULL,
    updated_us    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, target)
);
