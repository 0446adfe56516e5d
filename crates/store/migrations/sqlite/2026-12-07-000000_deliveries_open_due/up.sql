-- The dispatchers claim the open rows (pending, or failed and due again) oldest due first. On
-- (state, due_us) that was one range per state and then a sort of every open row: with 180,000
-- rows waiting (issue 7's end-to-end run on PostgreSQL) each claim read and sorted all of them,
-- 50–120 ms, and the dispatchers' claims took the server's CPU from the IdP's requests. This index
-- holds the open rows alone, in due order, so a claim reads as many entries as it takes (plus the
-- ones under lease). The claim names the states literally (`state IN ('pending', 'failed')`, as
-- here): both engines use a partial index only when the query's condition implies the index's.
-- Nothing else read deliveries_due: the counts by state use deliveries_stats.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_open_due ON deliveries (due_us) WHERE state IN ('pending', 'failed');
