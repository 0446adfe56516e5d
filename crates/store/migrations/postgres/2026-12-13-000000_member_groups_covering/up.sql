-- A user's groups (issue 22: `groups` on every user read, scopes by group) are read by member:
-- `WHERE tenant_id = ? AND member_id IN (…)`. With (tenant_id, member_id) only, SQLite (which
-- gathers no statistics by itself) preferred the primary key (tenant_id, group_id, member_id)
-- because it covers the query, and scanned every membership row of the tenant for each user:
-- at 100,000 members the dispatcher fell from hundreds of deliveries a second to tens. With the
-- group id in the index, it covers the read and is chosen on both engines.
DROP INDEX group_members_member;
CREATE INDEX group_members_member ON group_members (tenant_id, member_id, group_id);
