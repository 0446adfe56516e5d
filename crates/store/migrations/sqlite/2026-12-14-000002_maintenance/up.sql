-- Periodic maintenance jobs of the dispatchers (issue 19: the purge of old deliveries and audit
-- events): one row per job with the dispatcher that last took it and when, so that of several
-- dispatchers on one store one runs each job per interval (it moves `started_us` first). Keep
-- column-for-column equal to the other engine's migration and to src/schema.rs.
CREATE TABLE maintenance (
    job         TEXT    NOT NULL PRIMARY KEY,
    owner       TEXT    NOT NULL,
    started_us  BIGINT  NOT NULL
);
